#!/usr/bin/env bash
# Draws the app icon set in icons/ (not the tray-*.png state icons): a blue
# rounded square with a white envelope, drawn once at 1024 px and scaled
# down (Lanczos), so every size is sharp, not an upscaled small PNG.
# Writes 32x32.png, 128x128.png, 128x128@2x.png and 256x256.png (HiDPI,
# installers), icon.png (512 px) and icon.ico (16–256 px; tauri-build needs
# it for the Windows resource). Needs ImageMagick (`convert`, Debian
# package imagemagick). Run after changing the drawing; commit the results.
set -euo pipefail
cd "$(dirname "$0")/../icons"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
convert -size 1024x1024 xc:none \
    -fill '#2F6FD6' -draw 'roundrectangle 32,32 991,991 160,160' \
    -fill white -draw 'polygon 236,336 512,536 788,336 788,720 236,720' \
    "$tmp/master.png"
size() { convert "$tmp/master.png" -filter Lanczos -resize "$1x$1" -strip "PNG32:$2"; }
size 32 32x32.png
size 128 128x128.png
size 256 128x128@2x.png
size 256 256x256.png
size 512 icon.png
ico=()
for s in 16 24 32 48 64 128 256; do
    size "$s" "$tmp/ico$s.png"
    ico+=("$tmp/ico$s.png")
done
convert "${ico[@]}" icon.ico
