import { Duration, Stack, type StackProps } from "aws-cdk-lib";
import type { HttpApi } from "aws-cdk-lib/aws-apigatewayv2";
import { Dashboard, GraphWidget, Stats, TextWidget } from "aws-cdk-lib/aws-cloudwatch";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { Construct } from "constructs";
import type { EdgeAgentService } from "../constructs/edge-agent-service.ts";
import type { QueueWithDlq } from "../constructs/queue-with-dlq.ts";

export interface DashboardStackProps extends StackProps {
  readonly queues: readonly QueueWithDlq[];
  readonly functions: Readonly<Record<string, IFunction>>;
  readonly api: HttpApi;
  readonly agent: EdgeAgentService;
}

const PERIOD = Duration.minutes(1);

/** One CloudWatch dashboard: DLQ depth, queue age, function errors, API 5xx, agent health. */
export class DashboardStack extends Stack {
  public readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: DashboardStackProps) {
    super(scope, id, props);
    const fns = Object.entries(props.functions);

    this.dashboard = new Dashboard(this, "Dashboard", {
      defaultInterval: Duration.hours(3),
    });

    this.dashboard.addWidgets(
      new TextWidget({
        markdown:
          "# EHOME platform\nAny message in a dead-letter queue raises an alarm on the alarm topic.",
        width: 24,
        height: 2,
      }),
    );

    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Dead-letter queue depth",
        left: props.queues.map((q) =>
          q.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            period: PERIOD,
            statistic: Stats.MAXIMUM,
            label: q.definition.localName,
          }),
        ),
        width: 12,
      }),
      new GraphWidget({
        title: "Oldest message age (s)",
        left: props.queues.map((q) =>
          q.queue.metricApproximateAgeOfOldestMessage({
            period: PERIOD,
            statistic: Stats.MAXIMUM,
            label: q.definition.localName,
          }),
        ),
        width: 12,
      }),
    );

    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Function errors",
        left: fns.map(([name, fn]) =>
          fn.metricErrors({ period: PERIOD, statistic: Stats.SUM, label: name }),
        ),
        width: 8,
      }),
      new GraphWidget({
        title: "Function throttles",
        left: fns.map(([name, fn]) =>
          fn.metricThrottles({ period: PERIOD, statistic: Stats.SUM, label: name }),
        ),
        width: 8,
      }),
      new GraphWidget({
        title: "Function duration p99 (ms)",
        left: fns.map(([name, fn]) =>
          fn.metricDuration({ period: PERIOD, statistic: Stats.p(99), label: name }),
        ),
        width: 8,
      }),
    );

    this.dashboard.addWidgets(
      new GraphWidget({
        title: "API 5xx / 4xx",
        left: [
          props.api.metricServerError({ period: PERIOD, statistic: Stats.SUM, label: "5xx" }),
          props.api.metricClientError({ period: PERIOD, statistic: Stats.SUM, label: "4xx" }),
        ],
        right: [props.api.metricCount({ period: PERIOD, statistic: Stats.SUM, label: "requests" })],
        width: 12,
      }),
      new GraphWidget({
        title: "API latency p99 (ms)",
        left: [props.api.metricLatency({ period: PERIOD, statistic: Stats.p(99), label: "p99" })],
        width: 12,
      }),
    );

    const groups = props.agent.targetGroups;
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Agent CPU / memory (%)",
        left: [
          props.agent.service.metricCpuUtilization({ period: PERIOD, label: "CPU" }),
          props.agent.service.metricMemoryUtilization({ period: PERIOD, label: "memory" }),
        ],
        width: 12,
      }),
      new GraphWidget({
        title: "Healthy agents behind the NLB",
        left: Object.entries(groups).map(([name, group]) =>
          group.metrics.healthyHostCount({ period: PERIOD, statistic: Stats.MINIMUM, label: name }),
        ),
        width: 12,
      }),
    );
  }
}
