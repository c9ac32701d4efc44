import {
  PICTURE_PAGE_SIZE,
  type PictureSearchParams,
  type PictureSearchResult,
  parsePictureFile,
  type StoredPicture,
} from "../../lib/contracts/pictures.ts";
import type { CatalogueView } from "./catalogue.ts";
import { childTexts } from "./codec/index.ts";
import type { CommandOutcome, CommandSender } from "./command-sender.ts";

/**
 * `picture-search` (ehome-2.0 §8 row QUERYPICTURES, paged like §2.5): ask pages of at most 8
 * files from `startIdx`, `StartIdx += returned` each time, until a page comes back shorter than
 * its `ChunkSize` (the end) or `limit` pictures are in hand (then `nextIdx` says where to resume).
 * A page that fails or gets no answer ends the search with that outcome: a partial list would
 * look complete to the caller.
 */

export type PictureSearchOutcome =
  | { outcome: Extract<CommandOutcome, { kind: "ok" }>; result: PictureSearchResult }
  | { outcome: Exclude<CommandOutcome, { kind: "ok" }>; result?: undefined };

export async function searchPictures(
  sender: Pick<CommandSender, "send">,
  deviceId: string,
  view: CatalogueView | undefined,
  p: PictureSearchParams,
): Promise<PictureSearchOutcome> {
  const replyElement = view?.commands.queryPictures.reply.pictureFile;
  if (!replyElement) return { outcome: { kind: "offline" } };
  const pictures: StoredPicture[] = [];
  let idx = p.startIdx;
  let pages = 0;
  let unparsed = 0;
  // A device answering full pages of unparsable lines must not keep the agent asking forever.
  const maxPages = 2 * Math.ceil(p.limit / PICTURE_PAGE_SIZE) + 2;
  for (;;) {
    const chunkSize = Math.min(PICTURE_PAGE_SIZE, p.limit - pictures.length);
    const outcome = await sender.send(deviceId, "queryPictures", {
      channel: p.channel,
      picType: p.picType,
      startTime: p.startTime,
      stopTime: p.stopTime,
      chunkSize,
      startIdx: idx,
    });
    if (outcome.kind !== "ok") return { outcome };
    pages++;
    const lines = childTexts(outcome.params, replyElement);
    for (const line of lines) {
      const picture = parsePictureFile(line);
      if (picture) pictures.push(picture);
      else unparsed++;
    }
    idx += lines.length;
    // ehome-2.0 §2.5: a short (or empty) page is the last one.
    if (lines.length < chunkSize) {
      return { outcome, result: { pictures: pictures.slice(0, p.limit), pages, unparsed } };
    }
    if (pictures.length >= p.limit || pages >= maxPages) {
      return {
        outcome,
        result: { pictures: pictures.slice(0, p.limit), nextIdx: idx, pages, unparsed },
      };
    }
  }
}
