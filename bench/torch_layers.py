#!/usr/bin/python3
"""PyTorch's side of the layer rows: the same layers and shapes as bench/bench_layers.c (batch
128), forward and backward, median milliseconds over the repetitions, one JSON object a layer."""
import argparse
import json
import statistics
import time

import torch
from torch import nn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args()
    torch.manual_seed(1)
    torch.set_num_threads(args.threads)
    B = 128
    cases = [("Linear(784,400)", nn.Linear(784, 400), (B, 784), False),
             ("Linear(400,784)", nn.Linear(400, 784), (B, 400), True),
             ("Conv2d(1,32,k4,s2,p1) 28x28", nn.Conv2d(1, 32, 4, 2, 1), (B, 1, 28, 28), False),
             ("Conv2d(32,64,k4,s2,p1) 14x14", nn.Conv2d(32, 64, 4, 2, 1), (B, 32, 14, 14), True),
             ("ConvTranspose2d(64,32,k4,s2,p1) 7x7", nn.ConvTranspose2d(64, 32, 4, 2, 1), (B, 64, 7, 7), True),
             ("ConvTranspose2d(32,1,k4,s2,p1) 14x14", nn.ConvTranspose2d(32, 1, 4, 2, 1), (B, 32, 14, 14), True)]
    for name, layer, shape, input_grad in cases:
        tf, tb = [], []
        for rep in range(args.reps + 5):
            x = torch.rand(shape, requires_grad=input_grad)
            t0 = time.perf_counter()
            y = layer(x)
            t1 = time.perf_counter()
            g = torch.ones_like(y)
            t2 = time.perf_counter()
            y.backward(g)
            t3 = time.perf_counter()
            layer.zero_grad(set_to_none=True)
            if rep >= 5:
                tf.append(t1 - t0)
                tb.append(t3 - t2)
        print(json.dumps({"layer": name, "ms_forward": 1e3 * statistics.median(tf),
                          "ms_backward": 1e3 * statistics.median(tb), "threads": torch.get_num_threads()}),
              flush=True)


if __name__ == "__main__":
    main()
