"""PyTorch and JAX beside circ on the GPU (bench/gpu.sh run): sgemm in pure fp32 (no TF32) and
one SGD step of the MLPs 784-256-256-10 (batch 128) and 4096-4096-4096-10 (batch 1024) with
softmax cross-entropy summed over the batch, parameters kept on the device. Prints markdown.

circ computes in fp32 on the GPU's CUDA cores; JAX's default matrix precision on an Ampere or
later GPU is TF32 (tensor cores, 10-bit mantissas), so JAX runs twice: at "highest" precision
(fp32, the comparison the goals mean) and at its default (TF32, for reference)."""
import time


def median_us(f, runs=50):
    f()
    f()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2] * 1e6


rows = []
try:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    dev = "cuda"
    for n in (1024, 2048, 4096, 8192):
        a = torch.rand(n, n, device=dev)
        b = torch.rand(n, n, device=dev)

        def mm():
            (a @ b)
            torch.cuda.synchronize()

        us = median_us(mm, 10 if n >= 4096 else 30)
        rows.append((f"sgemm {n} (GFLOP/s)", "cuBLAS fp32 (PyTorch)", f"{2 * n**3 / us / 1e3:.0f}"))
    for name, widths, batch in (("784-256-256-10", (784, 256, 256, 10), 128), ("4096-4096-4096-10", (4096, 4096, 4096, 10), 1024)):
        ws = [torch.randn(i, o, device=dev) / i**0.5 for i, o in zip(widths, widths[1:])]
        bs = [torch.zeros(o, device=dev) for o in widths[1:]]
        for p in ws + bs:
            p.requires_grad_(True)
        x = torch.rand(batch, widths[0], device=dev)
        y = torch.randint(0, 10, (batch,), device=dev)

        def step():
            h = x
            for i, (w, b) in enumerate(zip(ws, bs)):
                h = h @ w + b
                if i + 1 < len(ws):
                    h = torch.relu(h)
            loss = torch.nn.functional.cross_entropy(h, y, reduction="sum")
            grads = torch.autograd.grad(loss, ws + bs)
            with torch.no_grad():
                for p, g in zip(ws + bs, grads):
                    p -= 1e-4 * g
            loss.item()

        rows.append((f"{name} step, sgd, batch {batch} (µs, median)", "PyTorch eager", f"{median_us(step):.0f}"))
except Exception as e:  # noqa: BLE001 - a peer that does not import is reported, not fatal
    rows.append(("PyTorch", "not available", str(e)[:80]))
try:
    import jax
    import jax.numpy as jnp

    for (name, widths, batch), precision in [
        (m, p)
        for p in ("highest", "default")
        for m in (("784-256-256-10", (784, 256, 256, 10), 128), ("4096-4096-4096-10", (4096, 4096, 4096, 10), 1024))
    ]:
        jax.config.update("jax_default_matmul_precision", None if precision == "default" else precision)
        key = jax.random.PRNGKey(0)
        params = [(jax.random.normal(key, (i, o)) / i**0.5, jnp.zeros(o)) for i, o in zip(widths, widths[1:])]
        x = jax.random.uniform(key, (batch, widths[0]))
        y = jax.random.randint(key, (batch,), 0, 10)

        def loss(ps):
            h = x
            for i, (w, b) in enumerate(ps):
                h = h @ w + b
                if i + 1 < len(ps):
                    h = jax.nn.relu(h)
            return -jnp.sum(jax.nn.log_softmax(h)[jnp.arange(batch), y])

        @jax.jit
        def step(ps):
            l, g = jax.value_and_grad(loss)(ps)
            return [(w - 1e-4 * gw, b - 1e-4 * gb) for (w, b), (gw, gb) in zip(ps, g)], l

        state = {"p": params}

        def run():
            state["p"], l = step(state["p"])
            l.block_until_ready()

        label = "jax.jit, fp32 (highest)" if precision == "highest" else "jax.jit, default (TF32)"
        rows.append((f"{name} step, sgd, batch {batch} (µs, median)", label, f"{median_us(run):.0f}"))
except Exception as e:  # noqa: BLE001
    rows.append(("JAX", "not available", str(e)[:80]))

print("| measurement | peer | value |")
print("|---|---|--:|")
for r in rows:
    print("| " + " | ".join(r) + " |")
