// The video size and the crop/pad frame, as the worker computes them
// (internal/job: chooseSize, cropRect, padRect), so that the preview shows
// what the job will use.

export const SIZE_STEP = 16;
export const MAX_SIDE = 16384;
export const TARGET_AREA = 832 * 832;
export const DEFAULT_MAX_PIXELS = 1280 * 720; // MAX_PIXELS' default

// snap rounds to the nearest multiple of SIZE_STEP, at least SIZE_STEP.
export function snap(x) {
  if (Number.isNaN(x) || x < SIZE_STEP) return SIZE_STEP;
  if (x > MAX_SIDE) return MAX_SIDE;
  return Math.round(x / SIZE_STEP) * SIZE_STEP;
}

// clampSide keeps a side within [SIZE_STEP, min(limit, MAX_SIDE)], on the grid.
function clampSide(v, limit) {
  limit = Math.floor(Math.min(limit, MAX_SIDE) / SIZE_STEP) * SIZE_STEP;
  return Math.max(SIZE_STEP, Math.min(v, limit));
}

// chooseSize returns [width, height] for an imgW×imgH image: given sides
// (non-zero) are kept, a missing side follows the image's aspect ratio, and
// with neither given the size aims at TARGET_AREA pixels within maxPixels.
export function chooseSize(w, h, imgW, imgH, maxPixels = DEFAULT_MAX_PIXELS) {
  if (w > 0 && h > 0) return [w, h];
  const r = imgW / imgH;
  if (w > 0) return [w, clampSide(snap(w / r), Math.floor(maxPixels / w))];
  if (h > 0) return [clampSide(snap(h * r), Math.floor(maxPixels / h)), h];
  const area = Math.min(TARGET_AREA, maxPixels);
  w = clampSide(snap(Math.sqrt(area * r)), MAX_SIDE);
  h = clampSide(snap(Math.sqrt(area / r)), MAX_SIDE);
  while (w * h > maxPixels && (w > SIZE_STEP || h > SIZE_STEP)) {
    // Give up 16 pixels on the side that keeps the aspect ratio closest.
    if (h === SIZE_STEP || (w > SIZE_STEP && w / h > r)) w -= SIZE_STEP;
    else h -= SIZE_STEP;
  }
  return [w, h];
}

// RESOLUTIONS are options.resolution's names and their short sides (580p is
// 576, on the 16-pixel grid).
export const RESOLUTIONS = { "480p": 480, "580p": 576, "720p": 720 };

// ASPECTS are options.aspect_ratio's fixed ratios ("auto" is the image's).
export const ASPECTS = { "16:9": [16, 9], "9:16": [9, 16], "1:1": [1, 1], "4:3": [4, 3], "3:4": [3, 4] };

// resolutionSize is the size for a short side and an aspect ratio rw:rh: the
// long side from the ratio on the grid, cut to keep the area within maxPixels.
export function resolutionSize(short, rw, rh, maxPixels = DEFAULT_MAX_PIXELS) {
  let r = rw / rh;
  if (r < 1) r = 1 / r;
  let long = Math.round((short * r) / SIZE_STEP) * SIZE_STEP;
  long = Math.max(short, Math.min(long, Math.floor(maxPixels / short / SIZE_STEP) * SIZE_STEP, MAX_SIDE));
  return rw >= rh ? [long, short] : [short, long];
}

// jobSize is the video size the worker chooses for an imgW×imgH image and
// the options width, height, resolution and aspect_ratio (internal/job).
export function jobSize(o, imgW, imgH, maxPixels = DEFAULT_MAX_PIXELS) {
  const [aw, ah] = ASPECTS[o.aspect_ratio] || [imgW, imgH];
  const short = RESOLUTIONS[o.resolution];
  if (short) return resolutionSize(short, aw, ah, maxPixels);
  return chooseSize(o.width || 0, o.height || 0, aw, ah, maxPixels);
}

// presets are the size choices for an image: the worker's default and the
// resolutions, each with the size it gives for this image and aspect ratio.
export function presets(imgW, imgH, aspect = "auto") {
  const out = [{ key: "default", label: "default", opts: {} }];
  for (const r of Object.keys(RESOLUTIONS)) out.push({ key: r, label: r, opts: { resolution: r } });
  for (const p of out) {
    if (aspect !== "auto") p.opts.aspect_ratio = aspect;
    [p.width, p.height] = jobSize(p.opts, imgW, imgH);
  }
  return out;
}

// PRESETS are options.preset's defaults (internal/job presets.go), for the
// placeholders of the fields they fill.
export const PRESETS = {
  fast: { steps: 6, cfg_high: 1, cfg_low: 1, shift: 8 },
  balanced: { steps: 10, cfg_high: 3.5, cfg_low: 1, shift: 8 },
  quality: { steps: 20, cfg_high: 3.5, cfg_low: 3.5, shift: 8 },
};

// cropRect is the centred part of an sw×sh image with the aspect ratio of
// w×h: [x, y, width, height] in image pixels.
export function cropRect(sw, sh, w, h) {
  if (sw * h > w * sh) {
    const cw = Math.max(1, Math.floor((sh * w + Math.floor(h / 2)) / h));
    return [Math.trunc((sw - cw) / 2), 0, cw, sh];
  }
  const ch = Math.max(1, Math.floor((sw * h + Math.floor(w / 2)) / w));
  return [0, Math.trunc((sh - ch) / 2), sw, ch];
}

// padRect is the centred rectangle inside w×h with the aspect ratio of
// sw×sh: [x, y, width, height] in video pixels.
export function padRect(sw, sh, w, h) {
  if (sw * h > w * sh) {
    const ih = Math.max(1, Math.floor((w * sh + Math.floor(sw / 2)) / sw));
    return [0, Math.trunc((h - ih) / 2), w, ih];
  }
  const iw = Math.max(1, Math.floor((h * sw + Math.floor(sh / 2)) / sh));
  return [Math.trunc((w - iw) / 2), 0, iw, h];
}

// framesFor is the length in frames (4k+1, at least 5) nearest to seconds at fps.
export function framesFor(seconds, fps) {
  const k = Math.max(1, Math.round((seconds * fps - 1) / 4));
  return 4 * k + 1;
}
