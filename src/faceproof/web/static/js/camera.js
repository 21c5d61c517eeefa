// Live capture hints from the camera, computed on a small grey copy of a region of the frame.
// Cheap on purpose (a few ms a frame on a phone): light, glare, sharpness and stillness only;
// the server does the real checks and says why a photo or clip was not good enough.

const SIZE = 128; // analysis width in px
const canvas = document.createElement("canvas");
const ctx = canvas.getContext("2d", { willReadFrequently: true });

/** Statistics of the region (x, y, w, h as fractions of the frame) of the video's frame. */
export function analyse(video, x, y, w, h) {
  const vw = video.videoWidth;
  const vh = video.videoHeight;
  const width = SIZE;
  const height = Math.max(8, Math.round((SIZE * (h * vh)) / (w * vw)));
  canvas.width = width;
  canvas.height = height;
  ctx.drawImage(video, x * vw, y * vh, w * vw, h * vh, 0, 0, width, height);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const grey = new Float32Array(width * height);
  let sum = 0;
  let bright = 0;
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 1) {
    const v = 0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2];
    grey[j] = v;
    sum += v;
    if (v > 250) bright += 1;
  }
  let edges = 0;
  for (let r = 1; r < height - 1; r += 1) {
    for (let c = 1; c < width - 1; c += 1) {
      const k = r * width + c;
      edges += Math.abs(4 * grey[k] - grey[k - 1] - grey[k + 1] - grey[k - width] - grey[k + width]);
    }
  }
  return {
    mean: sum / grey.length,
    glare: bright / grey.length,
    sharpness: edges / ((width - 2) * (height - 2)),
    grey,
  };
}

// Distance hints need the face's size: the Shape Detection API's FaceDetector where the browser
// has one (e.g. Chrome on Android); elsewhere the page gives light hints only.
const detector = "FaceDetector" in globalThis ? new globalThis.FaceDetector({ fastMode: true, maxDetectedFaces: 2 }) : null;

/** The faces the browser sees in the video frame, or null when it cannot tell. */
export async function detectFaces(video) {
  if (!detector) return null;
  try {
    return await detector.detect(video);
  } catch {
    return null;
  }
}

/** Turns successive frame statistics into one hint (a catalogue key) and a capture signal. */
export class CameraHints {
  constructor() {
    this.previous = null;
    this.steady = 0;
  }

  motion(stats) {
    const prev = this.previous;
    this.previous = stats.grey;
    if (!prev || prev.length !== stats.grey.length) return Infinity;
    let diff = 0;
    for (let i = 0; i < prev.length; i += 1) diff += Math.abs(prev[i] - stats.grey[i]);
    return diff / prev.length;
  }

  card(stats) {
    const moving = this.motion(stats) > 4;
    let key = "hint_good";
    if (stats.mean < 45) key = "hint_too_dark";
    else if (stats.glare > 0.03) key = "hint_glare";
    else if (stats.sharpness < 6) key = "hint_move_closer";
    else if (moving) key = "hint_hold_still";
    else if (stats.sharpness < 9) key = "hint_blurry";
    this.steady = key === "hint_good" ? this.steady + 1 : 0;
    // About a second of a sharp, still, well-lit card before taking it.
    const capture = this.steady >= 4;
    if (capture) this.steady = -8; // then wait for the server's answer before trying again
    return { key: capture || key !== "hint_good" ? key : "hint_hold_still", capture };
  }

  /** `faces`: the browser's face boxes in the frame (see detectFaces), or null if unknown. */
  face(stats, faces = null, frameWidth = 1) {
    if (stats.mean < 50) return { key: "hint_face_dark" };
    if (stats.glare > 0.2) return { key: "hint_face_bright" };
    if (faces) {
      if (faces.length === 0) return { key: "hint_face_none" };
      if (faces.length > 1) return { key: "hint_face_many" };
      const share = faces[0].boundingBox.width / frameWidth;
      if (share < 0.18) return { key: "hint_face_closer" };
      if (share > 0.6) return { key: "hint_face_back" };
    }
    return { key: "hint_face_good" };
  }
}
