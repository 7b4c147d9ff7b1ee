"""JAX's side of bench/compile_scaling.sh: the seconds `jax.jit(step).lower(...).compile()` takes
for the same chain (h = x @ w, then K times h = tanh(h) * 0.5 + h * 0.5, a normal(h, 1)
likelihood and a normal(0, 1) prior on w, one SGD step), written with a Python loop as a JAX user
would. Prints one `K seconds` line per size. Usage: python compile_scaling_jax.py K [K ...]"""
import sys
import time

import jax
import jax.numpy as jnp


def compile_seconds(k):
    x = jnp.ones((4, 2), jnp.float32)
    y = jnp.ones((4,), jnp.float32)
    w = jnp.zeros((2,), jnp.float32)

    def loss(w, x, y):
        h = x @ w
        for _ in range(k):
            h = jnp.tanh(h) * 0.5 + h * 0.5
        return 0.5 * jnp.sum((y - h) ** 2) + 0.5 * jnp.sum(w**2)

    def step(w, x, y):
        return w - 0.01 * jax.grad(loss)(w, x, y)

    jax.clear_caches()
    t0 = time.perf_counter()
    jax.jit(step).lower(w, x, y).compile()
    return time.perf_counter() - t0


if __name__ == "__main__":
    for k in map(int, sys.argv[1:]):
        print(k, f"{compile_seconds(k):.2f}", flush=True)
