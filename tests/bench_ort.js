// bench_ort.js MODEL.onnx STREAM [THREADS [CLASSES]] - ONNX Runtime's inference
// speed, the peer of kz-classify in make bench (issue 21): the images of
// a kz stream (man kz.5) as floats (pixel / 255), through MODEL in
// batches of 1000 on THREADS intra-op threads (default 2).  Prints
// "ort infer: N img/s (R images, batch 1000, T threads)", timing the
// session runs alone: in-process, after one warm-up batch, with the
// stream already read and converted (the peer's best case).  With
// CLASSES, also writes there each image's most probable class, one per
// line, to check that both sides run the same network.
"use strict";
const fs = require("fs");
const ort = require("onnxruntime-node");

const MAGIC = Buffer.from([0x8b, 0x4b, 0x5a, 0x53, 0x0d, 0x0a, 0x1a, 0x0a]);

// The images of a kz stream of 8-bit pixels, as one Float32Array.
function readStream(path) {
	const d = fs.readFileSync(path);
	if (!d.subarray(0, 8).equals(MAGIC))
		throw new Error(path + ": not a kz stream");
	const pix = d.readUInt16LE(12), k = d.readUInt16LE(14);
	const w = d.readUInt32LE(16), h = d.readUInt32LE(20);
	if (pix !== 1 && pix !== 0)
		throw new Error(path + ": 8-bit images only");
	const size = 12 + 8 * k + w * h;
	const offs = [];
	for (let off = 32; off < d.length;) {
		if (d.subarray(off, off + 8).equals(MAGIC)) {
			off += 32;
			continue;
		}
		offs.push(off + 12 + 8 * k);
		off += size;
	}
	const x = new Float32Array(offs.length * w * h);
	offs.forEach((o, i) => {
		for (let j = 0; j < w * h; j++)
			x[i * w * h + j] = d[o + j] / 255;
	});
	return { x, n: offs.length, w, h };
}

// Appends to best the most probable class of each row of tensor p.
function argmax(p, best) {
	const [n, C] = p.dims;
	for (let i = 0; i < n; i++) {
		let b = 0;
		for (let c = 1; c < C; c++)
			if (p.data[i * C + c] > p.data[i * C + b])
				b = c;
		best.push(b);
	}
}

async function main() {
	const [model, path, threads = "2", classes] = process.argv.slice(2);
	const s = readStream(path);
	const sess = await ort.InferenceSession.create(model, {
		intraOpNumThreads: Number(threads), interOpNumThreads: 1,
		executionMode: "sequential", graphOptimizationLevel: "all",
	});
	const input = sess.inputNames[0], B = 1000, px = s.w * s.h;
	const batch = (i) => new ort.Tensor("float32",
	    s.x.subarray(i * px, Math.min(i + B, s.n) * px),
	    [Math.min(B, s.n - i), 1, s.h, s.w]);
	const best = [];
	let dt = 0;
	await sess.run({ [input]: batch(0) });
	for (let i = 0; i < s.n; i += B) {
		const t = process.hrtime.bigint();
		const out = await sess.run({ [input]: batch(i) });
		dt += Number(process.hrtime.bigint() - t) / 1e9;
		if (classes)
			argmax(out[sess.outputNames[0]], best);
	}
	if (classes)
		fs.writeFileSync(classes, best.join("\n") + "\n");
	console.log(`ort infer: ${Math.round(s.n / dt)} img/s (${s.n} images, ` +
	    `batch ${B}, ${threads} threads)`);
}

main().catch((e) => {
	console.error("bench_ort.js: " + e.message);
	process.exit(1);
});
