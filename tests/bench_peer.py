#!/usr/bin/env python3
"""bench_peer.py - the peers of `make bench`, with Debian's python3-sklearn
and python3-torch, on the same files kz reads.

  bench_peer.py knn DATA               4-NN, distance-weighted: fit+predict
  bench_peer.py torch-train DATA N     Keras simple CNN, Adadelta, batch 128
  bench_peer.py torch-infer DATA       the same net, batches of 1000
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


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "knn":
        knn(sys.argv[2])
    elif cmd == "torch-train":
        torch_train(sys.argv[2], int(sys.argv[3]))
    elif cmd == "torch-infer":
        torch_infer(sys.argv[2])
