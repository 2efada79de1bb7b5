"""``ExecuteReply``: what ``view.execute(...).get()`` returns for each engine.

It shows like an ``Out[...]`` cell: ``repr`` is ``<ExecuteReply[count]: text>``,
IPython's pretty printer shows ``Out[engine:count]: text`` and the ``_repr_*_`` methods
hand IPython the rich mime types of the cell's ``execute_result``.  Metadata keys
(``stdout``, ``execute_result``, ``outputs``, ...) are readable as items or attributes.
"""

_REPR_LIMIT = 32


class ExecuteReply:
    def __init__(self, msg_id, content, metadata):
        self.msg_id = msg_id
        self._content = content
        self.metadata = metadata

    @property
    def execution_count(self):
        return self._content.get("execution_count")

    def __getitem__(self, key):
        return self.metadata[key]

    def __getattr__(self, key):
        # only called for names that are not real attributes
        if key.startswith("__") or key in ("metadata", "_content"):
            raise AttributeError(key)
        try:
            return self.metadata[key]
        except KeyError:
            raise AttributeError(key) from None

    def __dir__(self):
        return sorted(set(object.__dir__(self)) | set(self.metadata))

    def _data(self):
        result = self.metadata.get("execute_result") or {}
        return result.get("data") or {}

    def _text(self):
        return self._data().get("text/plain", "")

    def __repr__(self):
        text = self._text()
        if len(text) > _REPR_LIMIT:
            text = text[: _REPR_LIMIT - 3] + "..."
        return f"<ExecuteReply[{self.execution_count}]: {text}>"

    def out_prompt(self):
        return f"Out[{self.metadata.get('engine_id')}:{self.execution_count}]: "

    def _repr_pretty_(self, p, cycle):
        text = self._text()
        if not text:
            return  # no value: nothing to show, as ipyparallel
        prompt = self.out_prompt()
        p.text(prompt + ("\n" if "\n" in text else "") + text)

    def _repr_mime_(self, mime):
        return self._data().get(mime)

    def _repr_html_(self):
        return self._repr_mime_("text/html")

    def _repr_markdown_(self):
        return self._repr_mime_("text/markdown")

    def _repr_latex_(self):
        return self._repr_mime_("text/latex")

    def _repr_json_(self):
        return self._repr_mime_("application/json")

    def _repr_javascript_(self):
        return self._repr_mime_("application/javascript")

    def _repr_png_(self):
        return self._repr_mime_("image/png")

    def _repr_jpeg_(self):
        return self._repr_mime_("image/jpeg")

    def _repr_svg_(self):
        return self._repr_mime_("image/svg+xml")
