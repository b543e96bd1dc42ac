"""Browser viewer of a ``mobiler2l-onnx`` export: ``mobiler2l-view EXPORT_DIR``.

* :mod:`.server`: the console script; checks the export, serves the page, onnxruntime-web
  (``npm ci`` in this folder: ``package.json`` / ``package-lock.json`` pin its exact version) and
  the export folder over ``http.server`` on loopback.
* :mod:`.export_check`: the checks of the export folder and the reduced-resolution model graph.
* :mod:`.camera`: the viewer's orbit camera in Python, the reference of ``static/camera.js``.
* ``static/``: the page (``index.html``, ``viewer.js``, ``camera.js``, ``viewer.css``); no build step.
"""
