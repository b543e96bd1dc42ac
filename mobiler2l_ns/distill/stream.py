"""The pseudo views streamed to a training student: the producer thread and the pool it fills.

:class:`PseudoProducer` renders this rank's missing shards with the frozen teacher (through
:class:`~mobiler2l_ns.distill.generator.PseudoViewGenerator`), then collects the other ranks'
shards as they appear on disk; every view it renders or finds goes into a :class:`PseudoViewPool`,
which the datamanager draws from. Producers still running when the interpreter exits are stopped
first (the shard being written is finished).
"""

from __future__ import annotations

import atexit
import random
import threading
from collections import OrderedDict, deque
from typing import Deque, Dict, List, Optional, Set, Tuple

from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor

from mobiler2l_ns.distill.cache import PseudoCache, ViewReader
from mobiler2l_ns.distill.generator import PseudoViewGenerator
from mobiler2l_ns.distill.poses import TrainingRig
from mobiler2l_ns.distill.teacher import Teacher, TeacherRun
from mobiler2l_ns.utils.errors import InputError

OTHER_RANKS_POLL_S = 5.0


class PseudoViewPool:
    """The pseudo views available to the student, fed by the producer thread (thread-safe).

    Fresh views are drawn first (each once), then views at random. Decoded images are kept up to
    a memory budget (least recently used dropped) and otherwise re-read from their shard.
    """

    def __init__(self, cache: PseudoCache, memory_bytes: float, seed: int) -> None:
        self.cache = cache
        self.reader = ViewReader(cache)
        self.memory_bytes = memory_bytes
        self.rng = random.Random(seed)
        self.condition = threading.Condition()
        self.available: List[int] = []
        self.known: Set[int] = set()
        self.unseen: Deque[int] = deque()
        self.on_disk: Set[int] = set()
        self.pinned: Dict[int, Tensor] = {}  # rendered, shard not written yet
        self.decoded: "OrderedDict[int, Tensor]" = OrderedDict()
        self.decoded_bytes = 0
        self.error: Optional[BaseException] = None
        self.finished = False

    def __len__(self) -> int:
        return len(self.available)

    def add_rendered(self, view: int, image: Tensor) -> None:
        with self.condition:
            self.pinned[view] = image
            self._announce(view)

    def add_shard(self, shard: int) -> None:
        """All views of a valid shard on disk become available (pinned ones are unpinned)."""
        start, stop = self.cache.spec.shard_range(shard)
        with self.condition:
            for view in range(start, stop):
                self.on_disk.add(view)
                image = self.pinned.pop(view, None)
                if image is not None:
                    self._remember(view, image)
                self._announce(view)

    def _announce(self, view: int) -> None:
        if view not in self.known:
            self.known.add(view)
            self.available.append(view)
            self.unseen.append(view)
            self.condition.notify_all()

    def _remember(self, view: int, image: Tensor) -> None:
        size = image.numel() * image.element_size()
        if size > self.memory_bytes:
            return
        self.decoded[view] = image
        self.decoded_bytes += size
        while self.decoded_bytes > self.memory_bytes:
            _, dropped = self.decoded.popitem(last=False)
            self.decoded_bytes -= dropped.numel() * dropped.element_size()

    def fail(self, error: BaseException) -> None:
        with self.condition:
            self.error = error
            self.condition.notify_all()

    def finish(self) -> None:
        with self.condition:
            self.finished = True
            self.condition.notify_all()

    def draw(self) -> Tuple[int, Tensor]:
        """A view index and its stored image; waits until one is available."""
        with self.condition:
            while not self.available:
                if self.error is not None:
                    raise self.error
                if self.finished:
                    raise RuntimeError("the pseudo-view producer stopped without producing a view")
                self.condition.wait(timeout=1.0)
            view = self.unseen.popleft() if self.unseen else self.available[self.rng.randrange(len(self.available))]
            image = self.pinned.get(view)
            if image is None and view in self.decoded:
                self.decoded.move_to_end(view)
                image = self.decoded[view]
        if image is None:  # on disk only: read outside the lock
            image = self.reader.image(view)
            with self.condition:
                if view not in self.decoded:
                    self._remember(view, image)
        return view, image


class PseudoProducer:
    """The thread that renders this rank's missing shards, then collects the other ranks' shards."""

    def __init__(
        self,
        pool: PseudoViewPool,
        generator: PseudoViewGenerator,
        run: TeacherRun,
        device: str,
        own_to_render: List[int],
        others: List[int],
        check_cameras: TrainingRig,
    ) -> None:
        self.pool = pool
        self.generator = generator
        self.run = run
        self.device = device
        self.own_to_render = own_to_render
        self.others = others
        self.check_cameras = check_cameras
        self.stop_event = threading.Event()
        self.teacher: Optional[Teacher] = None
        self.thread = threading.Thread(target=self._main, name="pseudo-producer", daemon=True)

    def load_teacher(self) -> None:
        """Load the frozen teacher (main thread, so loading errors stop the run at once)."""
        if self.own_to_render and self.teacher is None:
            CONSOLE.print(f"[bold]Pseudo views: loading teacher {self.run.config_path}")
            self.teacher = self.run.load(self.device)
            check_same_frame(self.teacher, self.check_cameras)

    def start(self) -> None:
        self.thread.start()

    def wait_rendered(self) -> None:
        """Block until this rank's views are rendered (or rendering failed: the error is raised)."""
        while self.thread.is_alive() and self.own_to_render and self.teacher is not None:
            self.thread.join(timeout=1.0)
        if self.pool.error is not None:
            raise self.pool.error

    def stop(self, timeout: Optional[float] = None) -> None:
        """Ask the thread to stop after the current view and wait for it (the pending shard is written)."""
        self.stop_event.set()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout)
        self.teacher = None  # release the teacher's memory
        if not self.thread.is_alive():
            _RUNNING.discard(self)

    def _main(self) -> None:
        try:
            if self.own_to_render:
                assert self.teacher is not None
                self.generator.render_shards(
                    self.teacher,
                    self.own_to_render,
                    on_view=lambda view, c2w, intrinsics, image: self.pool.add_rendered(view, image),
                    on_shard=self.pool.add_shard,
                    stop=self.stop_event,
                )
                self.teacher = None
            waiting = list(self.others)
            while waiting and not self.stop_event.is_set():
                for shard, error in self.pool.cache.check(waiting).items():
                    if error is None:
                        self.pool.add_shard(shard)
                        waiting.remove(shard)
                    elif error.kind != "missing":
                        CONSOLE.print(f"[yellow]Pseudo views: skipping another rank's shard {error}")
                        waiting.remove(shard)
                if waiting:
                    self.stop_event.wait(OTHER_RANKS_POLL_S)
        except BaseException as error:  # pylint: disable=broad-except
            self.pool.fail(error)
        finally:
            self.teacher = None
            self.pool.finish()
            _RUNNING.discard(self)


def check_same_frame(teacher: Teacher, student: TrainingRig, tolerance: float = 1e-3) -> None:
    """InputError when teacher and student training cameras disagree (another dataset or frame)."""
    theirs = TrainingRig.from_cameras(teacher.train_cameras)
    if theirs.c2w.shape != student.c2w.shape:
        CONSOLE.print(
            f"[yellow]Pseudo views: the teacher has {theirs.c2w.shape[0]} training cameras, the student "
            f"{student.c2w.shape[0]}: make sure both use the same dataset and dataparser settings"
        )
        return
    gap = float(abs(theirs.c2w - student.c2w).max())
    if gap > tolerance:
        raise InputError(
            f"teacher {teacher.run.config_path} was trained in another world frame than the student "
            f"(training poses differ by up to {gap:.3g}); train the student on the teacher's dataset "
            "with the same dataparser settings"
        )


_RUNNING: Set[PseudoProducer] = set()
"""Started producers, held strongly: the process may drop the datamanager while its producer renders."""
_ATEXIT: List[bool] = []


def stop_at_exit(producer: PseudoProducer) -> None:
    """Stop ``producer`` before the interpreter finalises (a daemon thread killed inside torch aborts)."""
    if not _ATEXIT:
        atexit.register(_stop_all)
        _ATEXIT.append(True)
    _RUNNING.add(producer)


def _stop_all() -> None:
    for producer in list(_RUNNING):
        producer.stop(timeout=60.0)
