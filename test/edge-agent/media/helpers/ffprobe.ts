/** Runs the real ffmpeg / ffprobe (installed by .ci/run) for the media remux tests. */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface ProbeStream {
  codec_name: string;
  codec_type: string;
  width?: number;
  height?: number;
  nb_read_frames?: string;
}

export interface Probe {
  streams: ProbeStream[];
  /** ffprobe's stderr at `-v error`: empty when nothing failed to demux or decode. */
  errors: string;
}

export interface MediaDir {
  path: string;
  /** Encodes with ffmpeg and returns the output file's bytes. */
  ffmpeg(args: string[], output: string): Promise<Buffer>;
  probe(bytes: Buffer, name: string): Promise<Probe>;
  remove(): Promise<void>;
}

export async function mediaDir(): Promise<MediaDir> {
  const path = await mkdtemp(join(tmpdir(), "relay-media-"));
  return {
    path,
    async ffmpeg(args, output) {
      const file = join(path, output);
      await run("ffmpeg", ["-v", "error", "-nostdin", "-y", ...args, file], { timeout: 60_000 });
      return readFile(file);
    },
    async probe(bytes, name) {
      const file = join(path, name);
      await writeFile(file, bytes);
      const { stdout, stderr } = await run(
        "ffprobe",
        ["-v", "error", "-show_streams", "-count_frames", "-of", "json", file],
        { timeout: 60_000 },
      );
      const json = JSON.parse(stdout) as { streams?: ProbeStream[] };
      return { streams: json.streams ?? [], errors: stderr };
    },
    remove: () => rm(path, { recursive: true, force: true }),
  };
}
