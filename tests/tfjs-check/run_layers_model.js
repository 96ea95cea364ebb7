// Runs a TensorFlow.js layers model in Node with the pure-JS CPU backend and writes one layer's output, so tests
// can compare our imports with TensorFlow.js itself.
//   node run_layers_model.js MODEL_DIR INPUT.f32 N H W C LAYER OUT.f32
// MODEL_DIR holds either model.json + weight shards, or nsfwjs's bundles (model.min.js + groupK-shardKofN.min.js).
// LAYER is a layer name, or a Keras class name (e.g. GlobalAveragePooling2D) for the first layer of that class.
const tf = require('@tensorflow/tfjs');
const fs = require('fs');
const path = require('path');

async function main() {
  const [dir, inputFile, n, h, w, c, layerName, outFile] = process.argv.slice(2);
  let topology, manifest;
  const readShard = {};
  if (fs.existsSync(path.join(dir, 'model.json'))) {
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    topology = json.modelTopology;
    manifest = json.weightsManifest;
    for (const g of manifest) for (const p of g.paths) readShard[p] = () => fs.readFileSync(path.join(dir, p));
  } else {
    const bundle = require(path.resolve(dir, 'model.min.js'));
    topology = bundle.modelTopology;
    manifest = bundle.weightsManifest;
    for (const g of manifest) for (const p of g.paths) readShard[p] = () => Buffer.from(require(path.resolve(dir, p + '.min.js')), 'base64');
  }
  const buffers = [];
  const specs = [];
  for (const g of manifest) {
    for (const p of g.paths) buffers.push(readShard[p]());
    specs.push(...g.weights);
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: topology, weightSpecs: specs, weightData }));
  const layer = model.layers.find((l) => l.name === layerName) || model.layers.find((l) => l.getClassName() === layerName);
  if (!layer) throw new Error(`no layer ${layerName}`);
  const sub = tf.model({ inputs: model.inputs, outputs: layer.output });
  const raw = fs.readFileSync(inputFile);
  const input = tf.tensor4d(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), [+n, +h, +w, +c]);
  const out = sub.predict(input);
  const data = await out.data();
  fs.writeFileSync(outFile, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  console.log(JSON.stringify({ layer: layer.name, shape: out.shape, backend: tf.getBackend(), tfjs: tf.version.tfjs }));
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
