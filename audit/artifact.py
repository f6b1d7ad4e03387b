"""The code a submission's artifact counts, measured once per submission under both conventions.

Usually that is the main script alone. A tiny launcher (`exec(open("train_gpt_decode.py").read())`)
counts the file it runs: the launcher's 74 bytes are not the code. Helper modules that a large
main script imports are a separate question (R-ARTIFACT-CODE-SCOPE) and are not added here, so
these numbers compare like with like against the logs' `Code size` lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import PurePosixPath

from audit.analysis.sources import wrapper_info
from audit.codesize import CodeSizes, code_sizes
from audit.context import AuditContext

LAUNCHER_MAX_BYTES = 1_024


@dataclass
class CountedCode:
    files: tuple[str, ...]  # the main script first, then files a launcher runs
    raw: int  # bytes as shipped (convention a)
    wrapper: bool  # the counted code already is a self-extracting wrapper
    # Minify+compress of a 150 KB script takes seconds: computed only when a rule needs it.
    _estimate: Callable[[], int] = field(repr=False, compare=False)

    @cached_property
    def compressed(self) -> int:
        """Wrapper bytes as shipped, or the minified+compressed estimate (convention b)."""
        return self._estimate()

    @property
    def smallest(self) -> int:
        return min(self.raw, self.compressed)


def sizes_of(ctx: AuditContext, path: str, *, estimate: bool = False) -> CodeSizes | None:
    """code_sizes of one file of the folder, computed once; the slow estimate only on request."""
    tf = ctx.submission.code.get(path)
    if tf is None or tf.text is None:
        return None
    text = tf.text
    if estimate:
        return ctx.memo(f"codesize:{path}", lambda: code_sizes(text, wrapper=wrapper_info(ctx, path),
                                                               parses=_parses_as_is(ctx, path)))
    return ctx.memo(f"codesize-raw:{path}", lambda: code_sizes(text, estimate=False, wrapper=wrapper_info(ctx, path)))


def _parses_as_is(ctx: AuditContext, path: str) -> bool | None:
    """True when the shared parse shows `ast.parse` accepts the text as it is (None: unknown)."""
    text = ctx.submission.code[path].text or ""
    parsed = ctx.parsed(path)
    if parsed.tree is not None and not parsed.downgraded_fstrings and not text.startswith("\ufeff"):
        return True
    return None


def counted_code(ctx: AuditContext) -> CountedCode | None:
    return ctx.memo("artifact.counted_code", lambda: _counted(ctx))


def _counted(ctx: AuditContext) -> CountedCode | None:
    sub = ctx.submission
    main = sub.main_script
    if main is None or main.text is None:
        return None
    main_sizes = sizes_of(ctx, main.path)
    if main_sizes is None:
        return None
    files = [main.path]
    if main.size <= LAUNCHER_MAX_BYTES and not main_sizes.wrapper:
        files += [p for p in sorted(sub.code)
                  if p != main.path and PurePosixPath(p).name in main.text]
    # A launcher's own bytes are negligible once the file it runs is counted.
    counted = files[1:] or files
    measured = [s for s in (sizes_of(ctx, p) for p in counted) if s is not None]

    def estimate() -> int:
        full = [s for s in (sizes_of(ctx, p, estimate=True) for p in counted) if s is not None]
        return sum(s.compressed_estimate if s.compressed_estimate is not None else s.raw for s in full)

    return CountedCode(tuple(files), sum(s.raw for s in measured), all(s.wrapper for s in measured), estimate)
