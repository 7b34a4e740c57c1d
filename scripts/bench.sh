#!/usr/bin/env bash
# vidlog's benchmarks in one command. Makes a 60 s 1080p30 x264 clip (about 44 MB,
# 1800 samples) with Debian ffmpeg once, then measures:
#   - SDK logging of the clip into a recording file (vidlog bench log)
#   - `vidlog import` whole process, beside `ffmpeg -i clip.h264 -c copy out.mp4`
#   - `vidlog info` whole process
#   - `vidlog export` whole process
#   - ingest: 8 producers of the clip at once in real time into `vidlog serve` (vidlog bench ingest)
# Figures go to stdout; copy them into BENCHMARKS.md with the machine they ran on.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench-out
mkdir -p "$out"

# ffmpeg makes the clips and is the reference; nasm gives OpenH264 its SIMD code.
need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v nasm >/dev/null 2>&1 || need+=(nasm)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

clip="$out/clip1080.h264"
if [ ! -s "$clip" ]; then
  echo "== making $clip (60 s 1080p30 x264 High, GOP 60, no B-frames; takes a minute or two)"
  ffmpeg -v error -y -f lavfi -i "testsrc2=size=1920x1080:rate=30,noise=alls=6:allf=t" -t 60 \
    -c:v libx264 -preset veryfast -profile:v high -b:v 5.8M -maxrate 6M -bufsize 12M \
    -g 60 -bf 0 -pix_fmt yuv420p "$clip.tmp.h264"
  mv "$clip.tmp.h264" "$clip"
fi
echo "clip: $(stat -c %s "$clip") bytes"

cargo build --release -q -p vidlog
vidlog=target/release/vidlog

# best-of-N wall time of a command, in ms
best_ms() {
  local n=$1; shift
  local best=""
  for _ in $(seq "$n"); do
    local t0 t1 ms
    t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 ))
    if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
  done
  echo "$best"
}

echo "== SDK logging (vidlog bench log)"
"$vidlog" bench log --input "$clip" --repeat 7 --dir "$out"

echo "== import, whole process (best of 5)"
imp=$(best_ms 5 "$vidlog" import "$clip" --entity camera/front --fps 30 -o "$out/clip.vlog")
ff=$(best_ms 5 ffmpeg -v error -y -i "$clip" -c copy "$out/clip_ffmpeg.mp4")
echo "  vidlog import: ${imp} ms   ffmpeg -c copy to mp4: ${ff} ms   ratio: $(awk "BEGIN{printf \"%.2f\", $imp/$ff}")"

echo "== info, whole process (best of 10)"
"$vidlog" import "$clip" --entity camera/front --fps 30 -o "$out/clip.vlog" 2>/dev/null
inf=$(best_ms 10 "$vidlog" info "$out/clip.vlog")
echo "  vidlog info: ${inf} ms  (file $(stat -c %s "$out/clip.vlog") bytes)"
echo "== export to MP4, whole process (best of 5), beside ffmpeg -c copy from the raw clip"
exp=$(best_ms 5 "$vidlog" export "$out/clip.vlog" --entity camera/front -o "$out/export.mp4")
expf=$(best_ms 5 "$vidlog" export "$out/clip.vlog" --entity camera/front --fragmented -o "$out/export_frag.mp4")
echo "  vidlog export: ${exp} ms   --fragmented: ${expf} ms   ffmpeg -c copy: ${ff} ms   ratio: $(awk "BEGIN{printf \"%.2f\", $exp/$ff}")"
rss=$( { /usr/bin/time -f %M "$vidlog" export "$out/clip.vlog" --entity camera/front -o "$out/export.mp4" >/dev/null; } 2>&1 | tail -1 )
echo "  vidlog export peak RSS: ${rss} KiB (clip is $(( $(stat -c %s "$clip") / 1024 )) KiB)"
mc=$(best_ms 5 "$vidlog" export "$out/clip.vlog" --format mcap -o "$out/export.mcap")
echo "  vidlog export --format mcap: ${mc} ms"

echo "== ingest: 8 producers of the 1080p30 clip at once, paced in real time, into vidlog serve (vidlog bench ingest)"
"$vidlog" bench ingest --input "$clip" --producers 8 --fps 30 --seconds 30 --dir "$out/ingest"
rm -rf "$out/ingest"

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

# Native decoding (issue 5): vidlog bench decode {seek,warm,play,memory}; see BENCHMARKS.md "Decode".
dec="$out/decode"
mkdir -p "$dec"
if [ ! -s "$dec/clip.mp4" ]; then
  echo "== making $dec/clip.mp4 (20 s 1080p30 x264 High, keyframe every 2 s, no B-frames)"
  ffmpeg -v error -y -f lavfi -i "testsrc2=size=1920x1080:rate=30,noise=alls=6:allf=t" -t 20 \
    -c:v libx264 -preset veryfast -profile:v high -b:v 5.8M -maxrate 6M -bufsize 12M \
    -g 60 -keyint_min 60 -sc_threshold 0 -bf 0 -pix_fmt yuv420p "$dec/clip.h264"
  ffmpeg -v error -y -r 30 -i "$dec/clip.h264" -c copy "$dec/clip.mp4"
fi
"$vidlog" import "$dec/clip.mp4" --entity camera/front -o "$dec/rec.vlog" >/dev/null
"$vidlog" demo -o "$dec/demo.vlog" --size 1920x1080 --seconds 20 --fast >/dev/null 2>&1
"$vidlog" export "$dec/demo.vlog" --entity camera/front -o "$dec/demo.mp4" >/dev/null
cp "$vidlog" "$dec/vidlog-default"
cargo build --release -q -p vidlog --features ffmpeg
cp "$vidlog" "$dec/vidlog-ffmpeg"
for build in default ffmpeg; do
  echo "== decode, $build build"
  for pair in rec:clip demo:demo; do
    r="$dec/${pair%%:*}.vlog"; m="$dec/${pair##*:}.mp4"
    "$dec/vidlog-$build" bench decode seek --input "$r" --at 11.9s --mp4 "$m" --repeat 7 --dir "$dec"
    "$dec/vidlog-$build" bench decode play --input "$r" --mp4 "$m" --repeat 3
  done
  "$dec/vidlog-$build" bench decode warm --input "$dec/rec.vlog" --from 5s --steps 60
  for cache in 256 64; do
    "$dec/vidlog-$build" bench decode memory --input "$dec/rec.vlog" --cache-mb "$cache"
    "$dec/vidlog-$build" bench decode memory --input "$out/clip.vlog" --cache-mb "$cache"
  done
done
cargo build --release -q -p vidlog
