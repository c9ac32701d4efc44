#!/usr/bin/env node
import { App } from "aws-cdk-lib";
import { addEhomeStacks, addPolicyValidation } from "../lib/app.ts";

const app = new App();
addEhomeStacks(app);
addPolicyValidation(app);
app.synth();
