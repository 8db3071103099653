#!/usr/bin/env bash
# Creates the peers' virtual environment (.venv-peers at the repo root) with jax[cpu]+optax, torch, numpy.
# Idempotent: whatever already imports is skipped. PyPI only.
#
# torch: PyPI's Linux wheel is the CUDA build. Its libraries have hard DT_NEEDED links on the CUDA
# runtime libraries (cudart, cublas, cudnn, cufft, cusparse, nccl, nvshmem, ...), so `--no-deps` alone does
# NOT import. The smallest working install from PyPI ("slim", default) is torch --no-deps plus the
# requirements read from torch's own metadata, minus what plain CPU use never loads: triton (~1 GB,
# torch.compile only), cuda-bindings, and the cuda-toolkit extras cusolver and nvtx (~0.3 GB).
# Then `import torch` and a small CPU check are run; if they fail, torch is installed normally.
# TORCH_INSTALL=full skips the slim attempt. VENV_PEERS=path overrides the venv location.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV_PEERS:-$ROOT/.venv-peers}"
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -q)

if [ ! -x "$PY" ]; then
  echo "[setup_peers] creating $VENV"
  python3 -m venv "$VENV"
fi
have() { "$PY" -c "$1" >/dev/null 2>&1; }

if have "import numpy"; then echo "[setup_peers] numpy: present"; else
  echo "[setup_peers] installing numpy"; "${PIP[@]}" numpy; fi

if have "import jax, optax; jax.numpy.ones(2).block_until_ready()"; then echo "[setup_peers] jax+optax: present"; else
  echo "[setup_peers] installing jax[cpu] optax"; "${PIP[@]}" "jax[cpu]" optax; fi

TORCH_OK='import torch, torch.func
x = torch.randn(8, 3)
j = torch.func.vmap(torch.func.jacfwd(torch.nn.functional.softplus))(x)
m = torch.nn.Linear(3, 2); o = torch.optim.Adam(m.parameters()); m(x).pow(2).sum().backward(); o.step()
assert j.shape == (8, 3, 3)'

if have "$TORCH_OK"; then echo "[setup_peers] torch: present"; else
  if [ "${TORCH_INSTALL:-slim}" = slim ]; then
    echo "[setup_peers] installing torch (slim: --no-deps + needed CUDA runtime libs, no triton)"
    "${PIP[@]}" packaging
    "${PIP[@]}" --no-deps torch
    mapfile -t REQS < <("$PY" - <<'PYEOF'
from importlib.metadata import requires
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
skip = {"triton", "cuda-bindings"}          # torch.compile / CUDA python bindings: not loaded on CPU
drop_extras = {"cusolver", "nvtx"}          # dlopened lazily (CUDA linalg, profiling), not DT_NEEDED
for r in requires("torch") or []:
    q = Requirement(r)
    if q.marker is not None and not q.marker.evaluate({"extra": ""}):
        continue
    if canonicalize_name(q.name) in skip:
        continue
    q.extras = set(q.extras) - drop_extras
    q.marker = None
    print(str(q))
PYEOF
)
    echo "[setup_peers] torch requirements installed: ${REQS[*]}"
    "${PIP[@]}" "${REQS[@]}" 2>&1 | grep -v -e "requires triton" -e "requires cuda-bindings" -e "dependency conflicts" || true
  fi
  if have "$TORCH_OK"; then echo "[setup_peers] torch: slim install works on CPU"; else
    echo "[setup_peers] installing torch normally (full CUDA wheel set)"
    "${PIP[@]}" torch
    have "$TORCH_OK" || { echo "[setup_peers] torch still does not import" >&2; exit 1; }
  fi
fi
"$PY" -c 'import jax, torch, numpy, optax; print("[setup_peers] ok: jax", jax.__version__, "optax", optax.__version__, "torch", torch.__version__, "numpy", numpy.__version__)'
du -sh "$VENV" 2>/dev/null | sed 's/^/[setup_peers] venv size: /'
