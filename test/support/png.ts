import { inflateSync } from "node:zlib";

/**
 * Reads an 8-bit RGB or RGBA PNG (what Chromium's --screenshot writes) into its pixels, so a
 * test can say which colours a screenshot shows. Not a general decoder: no palette, no interlace.
 */
export function readPng(png: Buffer): {
  width: number;
  height: number;
  rgb: (x: number, y: number) => string;
} {
  let at = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const data: Buffer[] = [];
  while (at < png.length) {
    const length = png.readUInt32BE(at);
    const type = png.toString("ascii", at + 4, at + 8);
    const body = png.subarray(at + 8, at + 8 + length);
    if (type === "IHDR") {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      if (body[8] !== 8 || body[12] !== 0) throw new Error("only 8-bit, non-interlaced PNGs");
      channels = body[9] === 6 ? 4 : body[9] === 2 ? 3 : 0;
      if (channels === 0) throw new Error(`colour type ${body[9]} not supported`);
    } else if (type === "IDAT") data.push(body);
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(data));
  const stride = width * channels;
  const out = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i] as number;
      const a = i >= channels ? (out[y * stride + i - channels] as number) : 0;
      const b = y > 0 ? (out[(y - 1) * stride + i] as number) : 0;
      const c = y > 0 && i >= channels ? (out[(y - 1) * stride + i - channels] as number) : 0;
      const p = a + b - c;
      const pa = Math.abs(p - a);
      const pb = Math.abs(p - b);
      const pc = Math.abs(p - c);
      const paeth = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      const add = [0, a, b, (a + b) >> 1, paeth][filter as number] ?? 0;
      out[y * stride + i] = (x + add) & 0xff;
    }
  }
  const hex = (v: number) => v.toString(16).padStart(2, "0");
  return {
    width,
    height,
    rgb: (x, y) => {
      const o = y * stride + x * channels;
      return `#${hex(out[o] as number)}${hex(out[o + 1] as number)}${hex(out[o + 2] as number)}`;
    },
  };
}
