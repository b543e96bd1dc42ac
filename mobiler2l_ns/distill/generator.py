"""Rendering pseudo views with the teacher into the cache, shard by shard, resumably.

:func:`plan_shards` sorts a rank's shards into valid ones (kept), missing ones and unusable ones
(truncated / corrupt / foreign: an error naming them unless ``regenerate_corrupt``).
:class:`PseudoViewGenerator` renders the shards still to do, one view at a time through the
teacher's ``get_outputs_for_camera``, while a writer thread encodes and atomically writes the
previous shard; a rich progress bar shows views rendered, views/s and the time left. Views are
handed to ``on_view`` as soon as they are rendered, so a student can train on them at once.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.utils.rich_utils import CONSOLE, ItersPerSecColumn
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import Tensor

from mobiler2l_ns.distill.cache import PseudoCache, shard_problems_message
from mobiler2l_ns.distill.poses import make_cameras
from mobiler2l_ns.distill.shards import ShardError, ShardViews, to_storage
from mobiler2l_ns.distill.teacher import Teacher
from mobiler2l_ns.utils.errors import InputError

ViewCallback = Callable[[int, Tensor, Tensor, Tensor], None]
"""``on_view(index, c2w [3, 4], intrinsics [6], stored image [H, W, 3])``."""
ShardCallback = Callable[[int], None]
"""``on_shard(index)`` once the shard file is on disk."""


@dataclass
class ShardPlan:
    """A rank's shards by state."""

    valid: List[int] = field(default_factory=list)
    missing: List[int] = field(default_factory=list)
    unusable: Dict[int, ShardError] = field(default_factory=dict)

    @property
    def to_render(self) -> List[int]:
        return sorted(self.missing + list(self.unusable))


def plan_shards(
    cache: PseudoCache, shards: Sequence[int], regenerate_corrupt: bool, flag: str = "--regenerate-corrupt"
) -> ShardPlan:
    """Check ``shards`` (full checksums); InputError naming unusable ones unless ``regenerate_corrupt``.

    Leftover temporary files of these shards (a killed writer's) are deleted.
    """
    plan = ShardPlan()
    for index, error in cache.check(shards).items():
        if error is None:
            plan.valid.append(index)
        elif error.kind == "missing":
            plan.missing.append(index)
        else:
            plan.unusable[index] = error
    if plan.unusable and not regenerate_corrupt:
        raise InputError(shard_problems_message(cache.root, plan.unusable, flag))
    cache.require_writable(len(plan.missing) + len(plan.unusable))
    cache.remove_temporaries(shards)
    for index in plan.unusable:
        cache.remove(index)
    return plan


def progress_bar(description: str, enabled: bool = True) -> Progress:
    """nerfstudio-style progress: views done / total, views/s, time left."""
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("views"),
        ItersPerSecColumn(suffix="views/s"),
        TimeRemainingColumn(elapsed_when_finished=True, compact=True),
        console=CONSOLE,
        disable=not enabled,
    )


class PseudoViewGenerator:
    """Renders shards of a cache with a teacher (see the module docstring).

    Args:
        cache: the opened cache (its spec fixes shard ranges, encoding, ids).
        c2w: ``[N, 3, 4]`` poses of all ``N = cache.spec.count`` views.
        intrinsics: ``[N, 6]`` (fx, fy, cx, cy, width, height) of all views.
        like: cameras whose intrinsics dtype the pseudo cameras copy (the training cameras).
    """

    def __init__(
        self,
        cache: PseudoCache,
        c2w: Tensor,
        intrinsics: Tensor,
        like: Optional[Cameras] = None,
        show_progress: bool = True,
        description: str = "Rendering pseudo views",
    ) -> None:
        if c2w.shape != (cache.spec.count, 3, 4) or intrinsics.shape != (cache.spec.count, 6):
            raise ValueError(f"need poses of all {cache.spec.count} views, got {tuple(c2w.shape)}")
        self.cache = cache
        self.c2w = c2w.float().cpu()
        self.intrinsics = intrinsics.float().cpu()
        self.like = like
        self.show_progress = show_progress
        self.description = description
        self.views_rendered = 0
        self.seconds = 0.0

    def camera(self, index: int) -> Cameras:
        """The pseudo camera of view ``index`` (one camera, batch shape ``[1]``)."""
        return make_cameras(self.c2w[index : index + 1], self.intrinsics[index : index + 1], self.like)

    def render_shards(
        self,
        teacher: Teacher,
        shards: Sequence[int],
        on_view: Optional[ViewCallback] = None,
        on_shard: Optional[ShardCallback] = None,
        stop: Optional[threading.Event] = None,
    ) -> List[int]:
        """Render and write ``shards`` in order; returns the shards written.

        Stops early (between views; a partly rendered shard is dropped) when ``stop`` is set.
        On an exception (Ctrl-C included) the shard being written is finished before it propagates.
        """
        spec = self.cache.spec
        total = sum(spec.shard_range(k)[1] - spec.shard_range(k)[0] for k in shards)
        written: List[int] = []
        pending: Optional[Tuple[int, Future]] = None
        started = time.perf_counter()
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="pseudo-writer") as writer,
            progress_bar(self.description, self.show_progress) as progress,
        ):
            task = progress.add_task(self.description, total=total)
            try:
                for index in shards:
                    start, stop_view = spec.shard_range(index)
                    images: List[Tensor] = []
                    for view in range(start, stop_view):
                        if stop is not None and stop.is_set():
                            break
                        image = to_storage(teacher.render(self.camera(view)), spec.encoding)
                        images.append(image)
                        self.views_rendered += 1
                        if on_view is not None:
                            on_view(view, self.c2w[view], self.intrinsics[view], image)
                        progress.advance(task)
                    if len(images) < stop_view - start:  # stopped: drop the partial shard
                        break
                    if pending is not None:  # at most one shard in flight: bounded memory
                        pending[1].result()
                        written.append(pending[0])
                        pending = None
                    shard = ShardViews(start, self.c2w[start:stop_view], self.intrinsics[start:stop_view], images)
                    pending = (index, writer.submit(self._write, index, shard, on_shard))
            finally:
                if pending is not None:
                    pending[1].result()
                    written.append(pending[0])
                self.seconds += time.perf_counter() - started
        return written

    def _write(self, index: int, shard: ShardViews, on_shard: Optional[ShardCallback]) -> None:
        self.cache.write(index, shard)
        if on_shard is not None:
            on_shard(index)


def render_plain_loop(teacher: Teacher, cameras: Sequence[Cameras]) -> List[Tensor]:
    """Reference: ``teacher.model.get_outputs_for_camera`` on each camera (benchmarks, tests)."""
    with torch.no_grad():
        return [teacher.model.get_outputs_for_camera(c.to(teacher.device))["rgb"] for c in cameras]
