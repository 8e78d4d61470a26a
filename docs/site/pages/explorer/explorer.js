// The latent explorer: a trained decoder running in the browser, in plain JavaScript.
// decoder.json is written by `python -m tinyvae.tools.export`: for each Linear layer its
// W (n_in rows of n_out numbers) and b (n_out), the activation, the likelihood, the image
// shape, and the codes (means) of the test images with their labels.

const ACTIVATIONS = {
  relu: (v) => Math.max(v, 0),
  leaky_relu: (v, net) => (v > 0 ? v : net.leaky_slope * v),
  tanh: (v) => Math.tanh(v),
  sigmoid: (v) => 1 / (1 + Math.exp(-v)),
};

// --8<-- [start:decode]
// z (L numbers) -> the decoder's output (H*W numbers): Linear, activation, ..., Linear,
// then a sigmoid for a Bernoulli decoder, so that each output is a pixel's probability.
function decode(net, z) {
  let h = z;
  net.layers.forEach((layer, i) => {
    const out = layer.b.slice(); // h @ W + b: out[j] = b[j] + sum over k of h[k] W[k][j]
    for (let k = 0; k < h.length; k++) {
      for (let j = 0; j < out.length; j++) out[j] += h[k] * layer.W[k][j];
    }
    const last = i === net.layers.length - 1;
    h = last ? out : out.map((v) => ACTIVATIONS[net.activation](v, net));
  });
  return net.likelihood === "bernoulli" ? h.map((v) => ACTIVATIONS.sigmoid(v)) : h;
}
// --8<-- [end:decode]

const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function startExplorer(root, net) {
  const plane = root.querySelector(".tv-plane");
  const image = root.querySelector(".tv-image");
  const readout = root.querySelector(".tv-z");
  const range = 3; // the plane shows z1 and z2 from -3 to 3 (the prior's 99.7% per axis)
  const [H, W] = net.image_shape;
  image.width = W;
  image.height = H;
  const state = { z: [0, 0], pixels: [] };

  const toCanvas = (z) => [((z[0] + range) / (2 * range)) * plane.width,
                           ((range - z[1]) / (2 * range)) * plane.height];
  const fromCanvas = (x, y) => [(x / plane.width) * 2 * range - range,
                                range - (y / plane.height) * 2 * range];

  function drawPlane() {
    const ctx = plane.getContext("2d");
    const size = plane.width;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, size, size);
    ctx.strokeStyle = "#e3e3e3";
    for (let v = -range; v <= range; v++) { // a grid line at every integer, axes darker
      const [x, y] = toCanvas([v, v]);
      ctx.strokeStyle = v === 0 ? "#9e9e9e" : "#e3e3e3";
      ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, size); ctx.stroke();
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(size, y); ctx.stroke();
    }
    ctx.font = `${Math.round(size / 32)}px sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (const [z1, z2, label] of net.codes || []) { // each test image's code, as its digit
      const [x, y] = toCanvas([z1, z2]);
      ctx.fillStyle = label >= 0 ? COLOURS[label % 10] : "#555";
      ctx.fillText(label >= 0 ? String(label) : "·", x, y);
    }
    const [x, y] = toCanvas(state.z);
    ctx.lineWidth = Math.max(2, size / 160);
    ctx.strokeStyle = "#000";
    ctx.fillStyle = "rgba(255, 255, 255, 0.6)";
    ctx.beginPath(); ctx.arc(x, y, size / 28, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    ctx.lineWidth = 1;
  }

  function drawImage() {
    const ctx = image.getContext("2d");
    const pixels = ctx.createImageData(W, H);
    state.pixels.forEach((p, i) => { // dark ink on white: grey level 255 (1 - p)
      const grey = 255 * (1 - Math.min(Math.max(p, 0), 1));
      pixels.data.set([grey, grey, grey, 255], 4 * i);
    });
    ctx.putImageData(pixels, 0, 0);
  }

  function setZ(z1, z2) {
    const clamp = (v) => Math.min(Math.max(v, -range), range);
    state.z = [clamp(z1), clamp(z2)];
    state.pixels = decode(net, state.z);
    readout.textContent = `z = (${state.z[0].toFixed(2)}, ${state.z[1].toFixed(2)})`;
    drawPlane();
    drawImage();
  }

  function fitCanvas() { // a sharp plane at any width and pixel density
    const size = Math.round(plane.getBoundingClientRect().width * (window.devicePixelRatio || 1));
    if (size > 0 && size !== plane.width) {
      plane.width = plane.height = size;
      drawPlane();
    }
  }

  let dragging = false;
  function follow(event) {
    const box = plane.getBoundingClientRect();
    const scale = plane.width / box.width;
    setZ(...fromCanvas((event.clientX - box.left) * scale, (event.clientY - box.top) * scale));
  }
  plane.addEventListener("pointerdown", (event) => {
    dragging = true;
    plane.setPointerCapture(event.pointerId);
    follow(event);
  });
  plane.addEventListener("pointermove", (event) => { if (dragging) follow(event); });
  plane.addEventListener("pointerup", () => { dragging = false; });
  plane.addEventListener("keydown", (event) => { // arrow keys move the point by 0.1
    const step = { ArrowLeft: [-0.1, 0], ArrowRight: [0.1, 0], ArrowUp: [0, 0.1], ArrowDown: [0, -0.1] };
    if (!(event.key in step)) return;
    event.preventDefault();
    setZ(state.z[0] + step[event.key][0], state.z[1] + step[event.key][1]);
  });
  window.addEventListener("resize", fitCanvas);

  fitCanvas();
  setZ(0, 0);
  root.classList.add("tv-ready");
  return { net, decode: (z) => decode(net, z), setZ,
           get z() { return state.z.slice(); }, get pixels() { return state.pixels.slice(); } };
}

(async function () {
  const root = document.getElementById("tv-explorer");
  if (!root) return;
  const url = root.dataset.decoder;
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const net = await response.json();
    if (net.latent_dim !== 2) throw new Error(`a ${net.latent_dim}-D latent space, not 2-D`);
    window.tinyvaeExplorer = startExplorer(root, net);
  } catch (error) {
    root.querySelector(".tv-z").textContent =
      `The decoder (${url}) could not be loaded: ${error.message}. ` +
      "Open the site through a web server, such as python -m http.server.";
    console.error("latent explorer:", error);
  }
})();
