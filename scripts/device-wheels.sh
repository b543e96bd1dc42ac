#!/usr/bin/env bash
# Download into .whl/ the wheels the lent GPU machine lacks (issue 14). That machine has Python
# 3.12, torch 2.11, numpy, onnx, onnxruntime, onnxscript, torchmetrics, jaxtyping, rich, matplotlib,
# scipy, opencv-python-headless, tensorboard, ... but no package index, so everything else is
# carried: `run --carry .whl`, then `pip install --no-index --no-deps .whl/*.whl` and
# `pip install --no-deps --no-build-isolation -e .` there.
# The list is what `import mobiler2l_ns`, `ns-train mobiler2l-small|mobiler2l-teacher --help`,
# nerfstudio's Trainer / eval_setup and mobiler2l_ns.export import at module level (sys.modules
# diff and `python -X importtime`), minus what the device has. Not carried: open3d and pymeshlab
# (ns-export's other exporters and nerfstudio-data's sparse_pc.ply loader: the *-real students),
# wandb / comet_ml (imported only for --vis wandb|comet), viser's run-time extras (trimesh, plotly,
# yourdfpy, ...), optional imports (multiprocess, simplejson, PySocks, defusedxml, torch_fidelity).
# scripts/device-rehearsal.sh checks the set in a bare Python 3.12 venv. Idempotent: keeps the
# wheels already there, removes those not listed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
DEST=.whl
LIMIT_MIB=48  # the working tree (~10 MiB) and .whl travel together, 64 MiB at most

WHEELS=(
  nerfstudio==1.1.5        # the plugin's host: ns-train, Trainer, eval_setup, base classes
  tyro==1.0.17             # nerfstudio's CLIs; mobiler2l_ns.export.command (tyro.constructors)
  docstring_parser==0.18.0 # imported by tyro
  typeguard==4.6.1         # imported by tyro (_resolver)
  viser==0.2.7             # nerfstudio.engine.trainer -> nerfstudio.viewer.viewer
  websockets==17.4         # imported by viser (viser.infra)
  msgspec==0.23.0          # imported by viser (viser.infra)
  splines==0.3.0           # nerfstudio.viewer.render_panel
  gsplat==1.4.0            # viewer -> nerfstudio.models.splatfacto (pure wheel; CUDA JIT only when used)
  pytorch-msssim==1.0.0    # nerfstudio.models.splatfacto
  tensorly==0.10.0         # splatfacto -> nerfstudio.model_components.lib_bilagrid
  nerfacc==0.5.2           # our teacher (OccGridEstimator), nerfstudio renderers; pure wheel, CUDA JIT
  appdirs==1.4.4           # nerfstudio.process_data.colmap_utils <- colmap_dataparser <- dataparser_configs
  rawpy==0.28.0            # nerfstudio.process_data.process_data_utils <- colmap_utils (same chain)
  pyquaternion==0.9.9      # nerfstudio nuscenes_dataparser <- dataparser_configs
  fpsample==0.3.3          # nerfstudio full_images_datamanager (our students' base); newest cp312
                           # manylinux wheel (CI builds 1.0.2 from its sdist); same bucket_fps_kdline_sampling
  pathos==0.3.5            # nerfstudio parallel_datamanager <- nerfstudio.configs.method_configs
  ppft==1.7.8              # imported by pathos.helpers
  dill==0.4.1              # imported by pathos.helpers.pp_helper and ppft (pathos falls back to the
                           # standard multiprocessing without multiprocess: not carried)
)

mkdir -p "$DEST"
shopt -s nocaseglob nullglob
norm() { echo "$1" | tr 'A-Z' 'a-z' | sed -E 's/[-_.]+/_/g'; }  # wheel file name of a project name
prefixes=()
for spec in "${WHEELS[@]}"; do
  prefix="$(norm "${spec%%==*}")-${spec#*==}-"
  prefixes+=("$prefix")
  have=("$DEST"/"$prefix"*.whl)
  if [ ${#have[@]} = 0 ]; then  # (pip's warnings about this machine's absent local indexes are dropped)
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DEST" "$spec" 2> >(grep -v 'is ignored' >&2)
  fi
done

total=0
for f in "$DEST"/*.whl; do
  name=$(basename "$f" | tr 'A-Z' 'a-z')
  keep=0
  for p in "${prefixes[@]}"; do [[ "$name" == "$p"* ]] && keep=1; done
  if [ $keep = 0 ]; then echo "removing $(basename "$f") (not listed)"; rm -f "$f"; continue; fi
  size=$(stat -c %s "$f"); total=$((total + size))
  awk -v s="$size" -v n="$(basename "$f")" 'BEGIN { printf "%8.2f MiB  %s\n", s / 1048576, n }'
done
all=("$DEST"/*.whl); count=${#all[@]}
if [ "$count" -ne ${#WHEELS[@]} ]; then echo "device-wheels: $count wheels in $DEST, ${#WHEELS[@]} listed" >&2; exit 1; fi
awk -v s="$total" -v n="$count" -v l="$LIMIT_MIB" 'BEGIN { printf "total: %d wheels, %.2f MiB (limit %d MiB)\n", n, s / 1048576, l; exit (s > l * 1048576) }'
