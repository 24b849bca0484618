// The input image: reading it, and drawing the preview with the frame the
// job will use at w×h by fit (crop, pad or stretch, as internal/job does).

import { cropRect, padRect } from "./size.js";

const PREVIEW_MAX = 640; // longest side of the preview canvas, in canvas pixels

export function readFile(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

// loadImage resolves to the loaded <img>; naturalWidth and naturalHeight are
// the image as displayed (EXIF orientation applied, as the worker does).
export function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.decoding = "async";
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser could not read this image"));
    img.src = src;
  });
}

function fitCanvas(canvas, w, h) {
  const s = Math.min(1, PREVIEW_MAX / Math.max(w, h));
  canvas.width = Math.max(1, Math.round(w * s));
  canvas.height = Math.max(1, Math.round(h * s));
  return s;
}

// drawPreview draws img for a w×h video. crop: the whole image, the parts
// the crop cuts dimmed and the kept frame outlined. pad and stretch: the
// first frame as the video will have it.
export function drawPreview(canvas, img, w, h, fit) {
  const iw = img.naturalWidth;
  const ih = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  if (fit === "crop") {
    const s = fitCanvas(canvas, iw, ih);
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    const [x, y, cw, ch] = cropRect(iw, ih, w, h).map((v) => v * s);
    ctx.fillStyle = "rgba(0, 0, 0, 0.6)";
    ctx.fillRect(0, 0, canvas.width, y);
    ctx.fillRect(0, y + ch, canvas.width, canvas.height - y - ch);
    ctx.fillRect(0, y, x, ch);
    ctx.fillRect(x + cw, y, canvas.width - x - cw, ch);
    outline(ctx, x, y, cw, ch);
    return;
  }
  const s = fitCanvas(canvas, w, h);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (fit === "pad") {
    const [x, y, pw, ph] = padRect(iw, ih, w, h).map((v) => v * s);
    ctx.drawImage(img, x, y, pw, ph);
  } else {
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  }
  outline(ctx, 0, 0, canvas.width, canvas.height);
}

function outline(ctx, x, y, w, h) {
  ctx.lineWidth = 2;
  ctx.setLineDash([8, 6]);
  ctx.strokeStyle = "#ffd23f";
  ctx.strokeRect(x + 1, y + 1, w - 2, h - 2);
  ctx.setLineDash([]);
}

// thumbnail is a small JPEG data URL of img for the history, or "" when the
// browser may not read its pixels (an image from another site).
export function thumbnail(img, height = 72) {
  try {
    const c = document.createElement("canvas");
    c.height = height;
    c.width = Math.max(1, Math.round((img.naturalWidth / img.naturalHeight) * height));
    c.getContext("2d").drawImage(img, 0, 0, c.width, c.height);
    return c.toDataURL("image/jpeg", 0.7);
  } catch {
    return "";
  }
}

// base64Blob turns standard base64 into a Blob of type.
export function base64Blob(b64, type) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Blob([bytes], { type });
}
