// Runs face-api.js itself (the @vladmandic/face-api browser bundle, which carries its own TensorFlow.js, on the
// pure-JS CPU backend) on raw RGB images, so tests can compare our detector, landmarks and alignment inputs
// with face-api.js's own detectAllFaces(...).withFaceLandmarks() on the same pixels.
//   node run_faceapi.js MODEL_DIR OUT.json IMAGE.rgb:W:H [IMAGE.rgb:W:H ...]
// IMAGE.rgb holds H*W*3 bytes (RGB, row-major). OUT.json: per image, the faces with score, box (x, y, width,
// height in pixels) and the 68 landmarks (x, y) in pixels.
const fs = require('fs');
const path = require('path');
const util = require('util');
const vm = require('vm');

// The bundle expects a browser or Node with tfjs-node; a bare context with no window and no process lets it
// load, and the platform and face-api environment are then supplied by hand (nothing here fetches or draws).
const ctx = vm.createContext({ console, setTimeout, clearTimeout, setInterval, clearInterval, TextEncoder, TextDecoder, performance, queueMicrotask });
ctx.self = ctx;
const bundle = require.resolve('@vladmandic/face-api/dist/face-api.js');
vm.runInContext(fs.readFileSync(bundle, 'utf8') + '\n;globalThis.faceapi = faceapi;', ctx, { filename: bundle });
const faceapi = ctx.faceapi;
const tf = faceapi.tf;
const none = () => { throw new Error('not available in this runner'); };
tf.env().setPlatform('iddis-check', {
  fetch: none,
  now: () => performance.now(),
  encode: (t) => new TextEncoder().encode(t),
  decode: (b, e) => new TextDecoder(e).decode(b),
  isTypedArray: (a) => util.types.isFloat32Array(a) || util.types.isInt32Array(a) || util.types.isUint8Array(a) || util.types.isUint8ClampedArray(a),
});
class Unused {}
faceapi.env.setEnv({ Canvas: Unused, CanvasRenderingContext2D: Unused, Image: Unused, ImageData: Unused, Video: Unused,
  createCanvasElement: none, createImageElement: none, fetch: none, readFile: none });

async function load(net, dir, name) {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, `${name}-weights_manifest.json`), 'utf8'));
  const buffers = [];
  const specs = [];
  for (const g of manifest) {
    for (const p of g.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
    specs.push(...g.weights);
  }
  const all = Buffer.concat(buffers);
  await net.loadFromWeightMap(tf.io.decodeWeights(all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength), specs));
}

async function main() {
  const [dir, outFile, ...images] = process.argv.slice(2);
  await tf.setBackend('cpu');
  await tf.ready();
  await load(faceapi.nets.ssdMobilenetv1, dir, 'ssd_mobilenetv1_model');
  await load(faceapi.nets.faceLandmark68Net, dir, 'face_landmark_68_model');
  const results = [];
  for (const spec of images) {
    const [file, w, h] = spec.split(':');
    const raw = fs.readFileSync(file);
    const input = tf.tensor3d(new Int32Array(raw), [+h, +w, 3], 'int32');
    const faces = await faceapi.detectAllFaces(input, new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5 })).withFaceLandmarks();
    results.push(faces.map((f) => ({
      score: f.detection.score,
      box: [f.detection.box.x, f.detection.box.y, f.detection.box.width, f.detection.box.height],
      landmarks: f.landmarks.positions.map((p) => [p.x, p.y]),
    })));
    input.dispose();
  }
  fs.writeFileSync(outFile, JSON.stringify({ faceapi: faceapi.version, tfjs: tf.version.tfjs, backend: tf.getBackend(), images: results }));
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
