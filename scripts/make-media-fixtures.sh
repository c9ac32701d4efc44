#!/usr/bin/env bash
# Makes the simulator's H.264 fixtures (test/fixtures/media/, docs/simulator.md "Media"): two Annex-B
# elementary streams from ffmpeg's testsrc2 pattern, 25 fps, 3 s (75 frames), one IDR every 25
# frames (GOP 25, no scene-cut IDRs), no B-frames, an AUD before every access unit and SPS/PPS
# repeated before every IDR (so a stream joined at any IDR decodes). Single-threaded x264 so the
# output is reproducible with the same ffmpeg build (Debian ffmpeg 5.1).
# Usage: scripts/make-media-fixtures.sh [output dir]
set -euo pipefail
out="${1:-$(dirname "$0")/../test/fixtures/media}"
mkdir -p "$out"

make() { # name size profile crf
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=$2:rate=25:duration=3" \
    -c:v libx264 -profile:v "$3" -preset veryfast -tune zerolatency -threads 1 \
    -g 25 -keyint_min 25 -sc_threshold 0 -bf 0 -pix_fmt yuv420p \
    -x264-params "aud=1:repeat-headers=1" -crf "$4" \
    -f h264 "$out/$1.h264"
}

make main 640x360 main 30
make sub 320x180 baseline 30

# The facts tests assert against (frame counts and sizes as ffprobe reads them).
facts() { # name
  ffprobe -v error -count_frames -select_streams v:0 \
    -show_entries stream=codec_name,profile,width,height,nb_read_frames \
    -of default=noprint_wrappers=1 "$out/$1.h264"
}
for n in main sub; do echo "== $n"; facts "$n"; done
