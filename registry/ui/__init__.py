"""``mtrec ui``: the experiment registry in a browser (read-only, loopback by default).

Needs the ``ui`` extra (``pip install 'mtrec[ui]'``: starlette, uvicorn, jinja2).  The click
command (:mod:`.command`) imports none of them until it runs, so ``mtrec`` works without
the extra; the app itself is :func:`mtrec.registry.ui.app.create_app`.
"""
