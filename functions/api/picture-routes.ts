import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { PICTURE_FILE_NAME } from "../../lib/contracts/pictures.ts";
import { CaptureQuery } from "./alarm-schemas.ts";
import { CAPTURE_SUBMIT_RESPONSES } from "./capture-routes.ts";
import { COMMON_ERRORS, errorResponses } from "./errors.ts";
import type { PicturesService } from "./pictures-service.ts";
import { DEFAULT_PAGE_SIZE, DeviceIdParam, MAX_PAGE_SIZE } from "./schemas.ts";

const json = <T>(schema: T) => ({ "application/json": { schema } });

const channel = z.number().int().min(1).max(512);

/** Device local time; `T` or a space between date and time (a space must be URL-encoded). */
const localTime = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}$/, "YYYY-MM-DDTHH:MM:SS (device local time)")
  .transform((text, ctx) => {
    const [y, mo, d, h, mi, s] = text.split(/[-T :]/).map(Number) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const at = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
    if (at.getUTCMonth() !== mo - 1 || at.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
      ctx.addIssue({ code: "custom", message: "not a valid date and time" });
      return z.NEVER;
    }
    return text.replace("T", " ");
  })
  .openapi({ example: "2026-11-24T00:00:00" });

export const ListPicturesQuery = z.object({
  channel: z.coerce.number().pipe(channel).openapi({ description: "1-based video channel" }),
  start: localTime.openapi({ description: "from this device-local time (inclusive)" }),
  end: localTime.openapi({ description: "to this device-local time (inclusive)" }),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PAGE_SIZE)
    .default(DEFAULT_PAGE_SIZE)
    .openapi({ description: `Page size, 1-${MAX_PAGE_SIZE}` }),
  cursor: z
    .string()
    .max(2048)
    .optional()
    .openapi({ description: "`nextCursor` of the previous page (opaque)" }),
});

export const StoredPicturePage = z
  .object({
    items: z.array(
      z.object({
        channel: z.number().int(),
        fileName: z.string().openapi({ description: "name to fetch it by" }),
        time: z.string().openapi({ description: "device local time, YYYY-MM-DD HH:MM:SS" }),
        size: z.number().int().openapi({ description: "bytes, as the device lists it" }),
      }),
    ),
    nextCursor: z.string().optional(),
  })
  .openapi("StoredPicturePage");

export const PictureFetchRequest = z
  .object({
    channel,
    fileName: z
      .string()
      .regex(PICTURE_FILE_NAME, "a fileName from GET /devices/{deviceId}/pictures")
      .openapi({ example: "ch0001_00000000000122616" }),
  })
  .strict()
  .openapi("PictureFetchRequest");

export const listPictures = createRoute({
  method: "get",
  path: "/devices/{deviceId}/pictures",
  summary: "Search the pictures stored on the device (QUERYPICTURES, paged by the agent)",
  request: { params: DeviceIdParam, query: ListPicturesQuery },
  responses: {
    200: { description: "A page of stored pictures", content: json(StoredPicturePage) },
    ...errorResponses(
      "DEVICE_NOT_FOUND",
      "DEVICE_OFFLINE",
      "DEVICE_ERROR",
      "DEVICE_TIMEOUT",
      "VALIDATION_FAILED",
      ...COMMON_ERRORS,
    ),
  },
});

export const fetchPicture = createRoute({
  method: "post",
  path: "/devices/{deviceId}/pictures/fetch",
  summary: "Fetch a stored picture to S3 (UPLOADPIC); a capture record, `?wait=N` returns it ready",
  request: {
    params: DeviceIdParam,
    query: CaptureQuery,
    body: { content: json(PictureFetchRequest), required: true },
  },
  responses: CAPTURE_SUBMIT_RESPONSES,
});

export function registerPictureRoutes(app: OpenAPIHono, pictures: PicturesService): void {
  app.openapi(listPictures, async (c) =>
    c.json(await pictures.search(c.req.valid("param").deviceId, c.req.valid("query")), 200),
  );
  app.openapi(fetchPicture, async (c) => {
    const { status, capture } = await pictures.fetch(
      c.req.valid("param").deviceId,
      c.req.valid("json"),
      c.req.valid("query").wait,
    );
    return status === 200 ? c.json(capture, 200) : c.json(capture, 202);
  });
}
