#!/usr/bin/env python3
"""bench_peer.py - the peers of `make bench`, with Debian's python3-sklearn
and python3-torch, on the same files kz reads.

  bench_peer.py knn DATA               4-NN, distance-weighted: fit+predict
  bench_peer.py torch-train DATA N     Keras simple CNN, Adadelta, batch 128
  bench_peer.py torch-infer DATA       the same net, batches of 1000
  bench_peer.py torch-recipe FIT VAL TEST EVERY SEED
                                       the demo's recipe on kz streams:
                                       accuracy on val every EVERY images
                                       until 95%, then after each epoch
  bench_peer.py member MODEL.kzm N OUT.kzm
                                       an ensemble's member N (from 1), a
                                       whole model file, copied out
  bench_peer.py onnx MODEL.kzm OUT.onnx
                                       a kz network, its weights read from
                                       the model file (man kzm.5), rebuilt
                                       in torch and exported to ONNX
                                       (opset 13, any batch): the peer of
                                       kz-classify for ONNX Runtime
"""
import sys, time
import numpy as np


def load(data, part):
    x = np.load("%s/kmnist-%s-imgs.npz" % (data, part))["arr_0"]
    y = np.load("%s/kmnist-%s-labels.npz" % (data, part))["arr_0"]
    return x, y


def knn(data):
    from sklearn.neighbors import KNeighborsClassifier
    t = time.perf_counter()
    xtr, ytr = load(data, "train")
    xte, yte = load(data, "test")
    clf = KNeighborsClassifier(n_neighbors=4, weights="distance", n_jobs=-1)
    clf.fit(xtr.reshape(len(xtr), -1), ytr)
    acc = (clf.predict(xte.reshape(len(xte), -1)) == yte).mean()
    print("sklearn knn: %.2f%% in %.1f s (load + fit + predict)" % (100 * acc, time.perf_counter() - t))


def net():
    import torch
    import torch.nn as nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
        nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))


def torch_train(data, n):
    import torch
    torch.set_num_threads(2)
    torch.manual_seed(1)
    x, y = load(data, "train")
    x = torch.tensor(x[:n], dtype=torch.float32).unsqueeze(1) / 255
    y = torch.tensor(y[:n], dtype=torch.long)
    m = net()
    opt = torch.optim.Adadelta(m.parameters(), lr=1.0)
    loss_fn = torch.nn.CrossEntropyLoss()
    def run(lo, hi):
        for i in range(lo, hi, 128):
            opt.zero_grad()
            loss = loss_fn(m(x[i:i + 128]), y[i:i + 128])
            loss.backward()
            opt.step()
    run(0, 128 * 5)                       # warm-up
    t = time.perf_counter()
    run(0, n)
    dt = time.perf_counter() - t
    print("torch train: %.0f img/s (%d images, batch 128, 2 threads)" % (n / dt, n))


def torch_infer(data):
    import torch
    torch.set_num_threads(2)
    x, _ = load(data, "test")
    x = torch.tensor(x, dtype=torch.float32).unsqueeze(1) / 255
    m = net().eval()
    with torch.no_grad():
        m(x[:1000])
        t = time.perf_counter()
        for i in range(0, len(x), 1000):
            m(x[i:i + 1000])
        dt = time.perf_counter() - t
    print("torch infer: %.0f img/s (%d images, batch 1000, 2 threads)" % (len(x) / dt, len(x)))


def stream(path):
    """Images (N, 1, H, W) as floats in [0, 1] and labels of a kz stream,
    read by the independent reader of the tests."""
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import kzpy
    pix, lab = [], []
    for _, label, p in kzpy.records(path):
        pix.append(p)
        lab.append(label)
    side = int(round(len(pix[0]) ** 0.5))
    x = np.frombuffer(b"".join(pix), np.uint8).reshape(-1, 1, side, side)
    return x.astype(np.float32) / 255, np.array(lab, np.int64)


def torch_recipe(fit, val, test, every, seed):
    """kz-train -a cnn:conv32k3p1,bn,relu,maxpool2,conv64k3p1,bn,relu,
    maxpool2,dense128,relu,drop0.3 -e 3 --opt nesterov --lr 0.05
    --schedule cosine, in PyTorch with its own defaults (initialisation,
    BN momentum 0.1): standardised by the training set's mean and
    deviation as kz does, the rate set before each step from the
    fraction of training done."""
    import math
    import torch
    import torch.nn as nn
    torch.set_num_threads(2)
    torch.manual_seed(seed)
    xf, yf = stream(fit)
    xv, yv = stream(val)
    xt, yt = stream(test)
    mean, std = xf.mean(), xf.std()
    xf, xv, xt = [torch.tensor((a - mean) / std) for a in (xf, xv, xt)]
    yf, yv, yt = [torch.tensor(a) for a in (yf, yv, yt)]
    m = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(128, 10))
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    loss_fn = nn.CrossEntropyLoss()
    epochs, n = 3, len(xf)

    def accuracy(x, y):
        m.eval()
        with torch.no_grad():
            right = sum((m(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item()
                        for i in range(0, len(x), 1000))
        m.train()
        return right / len(x)

    train_s, seen, next_val, reached = 0.0, 0, every, None
    for e in range(epochs):
        order = torch.randperm(n)
        for i in range(0, n, 128):
            t = time.perf_counter()
            for g in opt.param_groups:
                g["lr"] = 0.05 * 0.5 * (1 + math.cos(math.pi * (e + i / n) / epochs))
            idx = order[i:i + 128]
            opt.zero_grad()
            loss_fn(m(xf[idx]), yf[idx]).backward()
            opt.step()
            train_s += time.perf_counter() - t
            seen += len(idx)
            # Every EVERY images until 95% (PyTorch's evaluation here is
            # slow enough to double the run), then at epochs' ends.
            if (seen >= next_val and reached is None) or i + 128 >= n:
                a = accuracy(xv, yv)
                print("val  epoch %.3f  %6.2f%%  %.1f s" % (seen / n, 100 * a, train_s))
                if a >= 0.95 and reached is None:
                    reached = train_s
                while next_val <= seen:
                    next_val += every
    print("torch test: %.2f%%" % (100 * accuracy(xt, yt)))


def kzm_sections(d):
    """(tag, payload) of every section of the model file in d."""
    import struct
    assert d[:8] == b"\x8bKZM\r\n\x1a\n", "not a kz model"
    off, out = 12, []
    while off < len(d):
        tag, n = d[off:off + 4], struct.unpack_from("<Q", d, off + 4)[0]
        out.append((tag, d[off + 12:off + 12 + n]))
        off += 12 + n
    return out


def member(model, n, out):
    members = [p for t, p in kzm_sections(open(model, "rb").read()) if t == b"MEMB"]
    open(out, "wb").write(members[n - 1])


def kzm_read(path):
    """META as a dict, the parameters (from PARM, PF16 or PQ8) and the
    statistics of a kz net model file, read from kzm(5)."""
    sec = dict(kzm_sections(open(path, "rb").read()))
    meta = dict(l.split("=", 1) for l in sec[b"META"].decode().splitlines())
    assert meta["type"] == "net", path + ": a net model, not " + meta["type"]
    if b"PARM" in sec:
        p = np.frombuffer(sec[b"PARM"], "<f4")
    elif b"PF16" in sec:
        p = np.frombuffer(sec[b"PF16"], "<f2").astype(np.float32)
    else:
        q = sec[b"PQ8 "]
        # len(q) = 4 nb + n with nb = ceil(n / 32)
        nb = next(b for b in range(len(q) // 36 - 1, len(q) // 36 + 3)
                  if (len(q) - 4 * b + 31) // 32 == b)
        scale = np.frombuffer(q[:4 * nb], "<f4")
        ints = np.frombuffer(q[4 * nb:], np.int8).astype(np.float32)
        p = ints * np.repeat(scale, 32)[:len(ints)]
    return meta, p, np.frombuffer(sec[b"STAT"], "<f4")


def kz_torch(meta, params, state):
    """The torch module of a kz net: the layers its spec names (conv,
    bn, relu, maxpool, avgpool, gap, drop, dense and pre-activation
    residual blocks, as lib/spec.c builds them), each taking its weights
    in layer order as kz lays them out."""
    import re
    import torch
    import torch.nn as nn
    arch = meta["arch"]
    assert arch.startswith("cnn:"), "only cnn: architectures"
    p, s = [0], [0]

    def take(n, src, at):
        t = torch.tensor(np.array(src[at[0]:at[0] + n]))
        at[0] += n
        return t

    def conv(cin, cout, k, stride, pad):
        m = nn.Conv2d(cin, cout, k, stride, pad)
        m.weight.data = take(cout * cin * k * k, params, p).reshape(cout, cin, k, k)
        m.bias.data = take(cout, params, p)
        return m

    def bn(c):
        m = nn.BatchNorm2d(c, eps=1e-5)
        m.weight.data = take(c, params, p)
        m.bias.data = take(c, params, p)
        m.running_mean.data = take(c, state, s)
        m.running_var.data = take(c, state, s)
        return m

    class Res(nn.Module):
        def __init__(self, cin, c, stride):
            super().__init__()
            self.bn1, self.c1 = bn(cin), conv(cin, c, 3, stride, 1)
            self.bn2, self.c2 = bn(c), conv(c, c, 3, 1, 1)
            self.proj = conv(cin, c, 1, stride, 0) if stride != 1 or cin != c else None

        def forward(self, x):
            a = torch.relu(self.bn1(x))
            y = self.c2(torch.relu(self.bn2(self.c1(a))))
            return y + (self.proj(a) if self.proj is not None else x)

    C, H, W = 1, int(meta["height"]), int(meta["width"])
    layers = []
    for tok in arch[4:].split(","):
        m = re.fullmatch(r"conv(\d+)((?:[ksp]\d+)*)", tok)
        if m:
            o = dict(k=3, s=1, p=0)
            o.update({a: int(b) for a, b in re.findall(r"([ksp])(\d+)", m.group(2))})
            cout = int(m.group(1))
            layers.append(conv(C, cout, o["k"], o["s"], o["p"]))
            C, H, W = cout, (H + 2 * o["p"] - o["k"]) // o["s"] + 1, (W + 2 * o["p"] - o["k"]) // o["s"] + 1
        elif (m := re.fullmatch(r"res(\d+)(?:s(\d+))?", tok)):
            c, st = int(m.group(1)), int(m.group(2) or 1)
            layers.append(Res(C, c, st))
            C, H, W = c, (H - 1) // st + 1, (W - 1) // st + 1
        elif tok == "bn":
            layers.append(bn(C))
        elif tok == "relu":
            layers.append(nn.ReLU())
        elif (m := re.fullmatch(r"(max|avg)pool(\d+)", tok)):
            k = int(m.group(2))
            layers.append(nn.MaxPool2d(k) if m.group(1) == "max" else nn.AvgPool2d(k))
            H, W = (H - k) // k + 1, (W - k) // k + 1
        elif tok == "gap":
            layers.append(nn.AdaptiveAvgPool2d(1))
            H = W = 1
        elif tok.startswith("drop"):
            pass
        elif (m := re.fullmatch(r"dense(\d+)", tok)):
            if H > 1 or W > 1 or not layers or not isinstance(layers[-1], nn.Flatten):
                layers.append(nn.Flatten())
            n = int(m.group(1))
            lin = nn.Linear(C * H * W, n)
            lin.weight.data = take(n * C * H * W, params, p).reshape(n, C * H * W)
            lin.bias.data = take(n, params, p)
            layers.append(lin)
            C, H, W = n, 1, 1
        else:
            raise SystemExit("bench_peer.py: token %s not exported" % tok)
    layers.append(nn.Flatten())
    n = int(meta["classes"])
    lin = nn.Linear(C * H * W, n)
    lin.weight.data = take(n * C * H * W, params, p).reshape(n, C * H * W)
    lin.bias.data = take(n, params, p)
    layers.append(lin)
    assert p[0] == len(params) and s[0] == len(state), "parameters left over"
    mean, std = float(meta.get("mean", 0)), float(meta.get("std", 1))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(*layers)

        def forward(self, x):        # x: pixels / 255
            return torch.softmax(self.body((x - mean) / std), 1)

    return Net().eval()


def torch_train_model(model, path):
    """One epoch of the kz net in MODEL (rebuilt by kz_torch) on the
    records of PATH, as kz-train -b 128 --opt nesterov --lr 0.1 --wd 5e-4
    trains it, in PyTorch's single precision on 2 threads: images a
    second, after a warm-up of five batches."""
    import torch
    import torch.nn as nn
    torch.set_num_threads(2)
    torch.manual_seed(1)
    meta, params, state = kzm_read(model)
    body = kz_torch(meta, params, state).body.train()
    x, y = stream(path)
    x, y = torch.tensor(x), torch.tensor(y)
    opt = torch.optim.SGD(body.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()

    def run(lo, hi):
        for i in range(lo, hi, 128):
            opt.zero_grad()
            loss_fn(body(x[i:i + 128]), y[i:i + 128]).backward()
            opt.step()
    run(0, 128 * 5)
    t = time.perf_counter()
    run(0, len(x))
    print("torch train: %.0f img/s (%d images, batch 128, 2 threads)"
          % (len(x) / (time.perf_counter() - t), len(x)))


def onnx_export(model, out):
    import torch
    meta, params, state = kzm_read(model)
    net = kz_torch(meta, params, state)
    x = torch.zeros(1, 1, int(meta["height"]), int(meta["width"]))
    with torch.no_grad():
        torch.onnx.export(net, x, out, opset_version=13, input_names=["x"],
                          output_names=["p"], dynamic_axes={"x": {0: "n"}, "p": {0: "n"}})


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "knn":
        knn(sys.argv[2])
    elif cmd == "torch-train":
        torch_train(sys.argv[2], int(sys.argv[3]))
    elif cmd == "torch-infer":
        torch_infer(sys.argv[2])
    elif cmd == "torch-recipe":
        torch_recipe(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    elif cmd == "torch-train-model":
        torch_train_model(sys.argv[2], sys.argv[3])
    elif cmd == "member":
        member(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif cmd == "onnx":
        onnx_export(sys.argv[2], sys.argv[3])
