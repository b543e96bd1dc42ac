"""distill stage of mobiler2l-ns: teacher-rendered pseudo views for the student.

* :mod:`.poses` - seeded pseudo poses around the training cameras (360 shell or forward-facing boxes).
* :mod:`.teacher` - the frozen teacher run, loaded with nerfstudio's ``eval_setup`` from any folder.
* :mod:`.shards` - the shard file: PNG / fp16 image encodings, header, payload and checksum.
* :mod:`.cache` - a folder of checksummed, atomically written shards plus a manifest.
* :mod:`.generator` - renders a rank's missing shards (resumable, with a progress bar).
* :mod:`.stream` - the producer thread that renders a rank's shards during training, and the pool
  of views it fills.
* :mod:`.datamanager` - ``--pipeline.datamanager.teacher-config``: streams pseudo views to the
  student while they are rendered, mixed with a share of real images, optional real-only fine-tune.
* :mod:`.cli` - ``mobiler2l-pseudo generate | check``.
"""
