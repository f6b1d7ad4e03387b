"""The code a submission's artifact counts, measured once per submission under both conventions.

Usually that is the main script alone. A tiny launcher (`exec(open("train_gpt_decode.py").read())`)
counts the file it runs: the launcher's 74 bytes are not the code. Helper modules that a large
main script imports are a separate question (R-ARTIFACT-CODE-SCOPE) and are not added here, so
these numbers compare like with like against the logs' `Code size` lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from audit.codesize import CodeSizes, code_sizes
from audit.context import AuditContext

LAUNCHER_MAX_BYTES = 1_024


@dataclass(frozen=True)
class CountedCode:
    files: tuple[str, ...]  # the main script first, then files a launcher runs
    raw: int  # bytes as shipped (convention a)
    compressed: int  # wrapper bytes as shipped, or the minified+compressed estimate (convention b)
    wrapper: bool  # the counted code already is a self-extracting wrapper

    @property
    def smallest(self) -> int:
        return min(self.raw, self.compressed)


def sizes_of(ctx: AuditContext, path: str) -> CodeSizes | None:
    """code_sizes of one file of the folder, computed once (the estimate compresses ~100 KB)."""
    tf = ctx.submission.code.get(path)
    if tf is None or tf.text is None:
        return None
    text = tf.text
    return ctx.memo(f"codesize:{path}", lambda: code_sizes(text))


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
    measured = [s for s in (sizes_of(ctx, p) for p in (files[1:] or files)) if s is not None]
    raw = sum(s.raw for s in measured)
    compressed = sum(s.compressed_estimate if s.compressed_estimate is not None else s.raw for s in measured)
    return CountedCode(tuple(files), raw, compressed, all(s.wrapper for s in measured))
