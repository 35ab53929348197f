"""Trains the exported model with layerlab's recipe.

    python train.py                                # one machine (a GPU if there is one)
    torchrun --nproc_per_node=4 train.py           # 4 processes, DistributedDataParallel
    torchrun --nnodes=2 --nproc_per_node=8 ... train.py   # many machines

It starts from weights.safetensors (the weights layerlab exported) when that file
is beside it, and writes the trained weights to trained.safetensors. Each step
takes one batch of the same size and order as layerlab; with N processes every
process takes 1/N of it and DDP averages the gradients, so the recipe is the
same on any number of GPUs.
"""
import argparse
import gzip
import math
import os

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from model import build_model

DATASET = "__DATASET__"
__TASK_LINE__
SEED = __SEED__
BATCH_SIZE = __BATCH__
EPOCHS = __EPOCHS__


__OPTIMIZER_CLASS__
def make_optimizer(params):
    return __OPTIMIZER__


__DATA_PY__

def evaluate(model, x, y, device):
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + 1000].to(device)).cpu() for i in range(0, len(x), 1000)])
    model.train()
    right = logits.argmax(-1) == y
    if right.dim() == 2:
        return right.float().mean().item(), right.all(dim=1).float().mean().item()
    return right.float().mean().item(), None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--data", default=os.path.join(here, "mnist"), help="folder with the four MNIST .gz files")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps (a quick check)")
    parser.add_argument("--out", default=os.path.join(here, "trained.safetensors"))
    args = parser.parse_args()

    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", 0))
        device = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
    else:
        rank, world = 0, 1
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)

    torch.manual_seed(SEED)
    model = build_model()
    start = os.path.join(here, "weights.safetensors")
    if os.path.exists(start):
        model.load_state_dict(load_file(start))
    model.to(device)
    net = torch.nn.parallel.DistributedDataParallel(model) if distributed else model
    optimizer = make_optimizer(net.parameters())

    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in load_data(args.data))
    n = len(x_train)
    step = 0
    for epoch in range(args.epochs):
        order = torch.tensor(lcg_permutation(n, epoch_seed(epoch)))
        for begin in range(0, n, BATCH_SIZE):
            if min(BATCH_SIZE, n - begin) < world:
                break  # a last batch too small to give every process an example
            batch = order[begin:begin + BATCH_SIZE][rank::world]
            x, y = x_train[batch].to(device), y_train[batch].to(device)
            logits = net(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if rank == 0 and step % 100 == 0:
                print(f"epoch {epoch + 1} step {step}: loss {loss.item():.4f}", flush=True)
            if args.steps is not None and step >= args.steps:
                break
        if args.steps is not None and step >= args.steps:
            break

    if rank == 0:
        accuracy, sequences = evaluate(model, x_test, y_test, device)
        line = f"after {step} steps: test accuracy {accuracy * 100:.2f} %"
        if sequences is not None:
            line += f", sequences right {sequences * 100:.2f} %"
        print(line)
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, args.out)
        print(f"trained weights: {args.out}")
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
