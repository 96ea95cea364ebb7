"""PyTorch-eager side of the benchmarks (Debian python3-torch). Prints one JSON line, like the C# harness.
   python3 bench_reference.py gemm --threads 2
   python3 bench_reference.py generator --batch 8 --threads 2
   python3 bench_reference.py inference --batch 8 --threads 2
   python3 bench_reference.py train-step --batch 6 --threads 2"""
import argparse, json, resource, sys, time
import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from stylegan2_ref import Generator


def timed(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2], ts[0]


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bench")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=0)
    p.add_argument("--size", type=int, default=256)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.bench == "gemm":
        n = 2048
        x, y = torch.randn(n, n), torch.randn(n, n)
        med, best = timed(lambda: x @ y, 2, a.iters or 7)
        out = dict(bench="gemm", impl="pytorch", n=n, threads=a.threads, seconds=med, gflops=2 * n ** 3 / med / 1e9,
                   gflops_best=2 * n ** 3 / best / 1e9, torch=torch.__version__)
    elif a.bench == "generator":
        torch.manual_seed(0)
        g = Generator(a.size).eval()
        with torch.no_grad():
            w = g.style(torch.randn(a.batch, 512))
            med, best = timed(lambda: g(w), 2, a.iters or (7 if a.batch == 1 else 3))
        out = dict(bench="generator", impl="PyTorch eager (rosinality formulation)", size=a.size, batch=a.batch,
                   threads=a.threads, seconds=med, ms_per_image=med * 1000 / a.batch, best_seconds=best,
                   peak_rss_mib=peak_rss_mib(), torch=torch.__version__)
    elif a.bench == "inference":
        from pipeline_ref import Pipeline
        pipe = Pipeline(a.size)
        torch.manual_seed(1)
        ids, attrs = torch.rand(a.batch, 3, a.size, a.size), torch.rand(a.batch, 3, a.size, a.size)
        med, best = timed(lambda: pipe.swap(ids, attrs), 1, a.iters or (7 if a.batch == 1 else 3))
        out = dict(bench="inference", impl="PyTorch eager (pipeline_ref.py)", size=a.size, batch=a.batch, threads=a.threads,
                   seconds=med, seconds_per_pair=med / a.batch, best_seconds=best, peak_rss_mib=peak_rss_mib(), torch=torch.__version__)
    elif a.bench == "train-step":
        from pipeline_ref import Pipeline
        batch = a.batch if a.batch > 1 else 6
        pipe = Pipeline(a.size)
        torch.manual_seed(1)
        ids, attrs, ws = torch.rand(batch, 3, a.size, a.size), torch.rand(batch, 3, a.size, a.size), torch.randn(batch, 512)
        secs = []
        for n in range(8):  # steps 2-7 cover same/cross with and without D_W once each, as the C# side
            t = time.perf_counter()
            pipe.train_step(n, ids, attrs, ws)
            if n >= 2:
                secs.append(time.perf_counter() - t)
        out = dict(bench="train-step", impl="PyTorch eager (pipeline_ref.py)", size=a.size, batch=batch, threads=a.threads,
                   seconds=sum(secs) / len(secs), min_seconds=min(secs), max_seconds=max(secs), peak_rss_mib=peak_rss_mib(), torch=torch.__version__)
    else:
        raise SystemExit(f"unknown bench {a.bench}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
