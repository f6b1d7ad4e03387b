"""The code a submission's artifact counts, measured once per submission under both conventions.

Usually that is the main script alone. A tiny launcher (`exec(open("train_gpt_decode.py").read())`)
counts the file it runs: the launcher's 74 bytes are not the code. Helper modules that a large
main script imports are a separate question (R-ARTIFACT-CODE-SCOPE) and are not added here, so
these numbers compare like with like against the logs' `Code size` lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from audit.analysis.sources import wrapper_info
from audit.codesize import (
    CODECS,
    WRAPPER_HEAD_BROTLI,
    WRAPPER_HEAD_LZMA,
    WRAPPER_TAIL_BROTLI,
    WRAPPER_TAIL_LZMA,
    CodeSizes,
    code_sizes,
    with_codecs,
)
from audit.context import AuditContext

LAUNCHER_MAX_BYTES = 1_024


# The estimate's first codec: lzma costs a fifth of brotli-11, which on its own takes three times
# the parse of the script. The rules ask whether the code fits in the room a model leaves; when
# lzma's figure already fits, every codec's smallest fits too, and brotli is not run.
QUICK_CODECS = ("lzma",)
# The fewest bytes any codec's estimate can be: its `exec(...)` shell around an empty payload.
EMPTY_WRAPPER_BYTES = min(len(WRAPPER_HEAD_LZMA) + len(WRAPPER_TAIL_LZMA),
                          len(WRAPPER_HEAD_BROTLI) + len(WRAPPER_TAIL_BROTLI))


@dataclass
class CountedCode:
    files: tuple[str, ...]  # the main script first, then files a launcher runs
    raw: int  # bytes as shipped (convention a)
    wrapper: bool  # the counted code already is a self-extracting wrapper
    # Minify+compress of a 150 KB script takes a tenth of a second or more: computed only when a
    # rule needs it; codecs -> the estimate, summed over the counted files.
    _estimate: Callable[[tuple[str, ...]], int] = field(repr=False, compare=False)

    def compressed_for(self, room: int) -> int:
        """Wrapper bytes as shipped, or the minified+compressed estimate (convention b), as far as
        the question "does it fit in `room` bytes?" needs: lzma's figure when that fits, or when
        nothing could (the room is smaller than an empty wrapper: the model alone is over the
        cap), else the smallest over every codec. Either way the answer is every codec's."""
        quick = self._estimate(QUICK_CODECS)
        if quick <= room or room < EMPTY_WRAPPER_BYTES:
            return quick
        return self._estimate(CODECS)

    def smallest_for(self, room: int) -> int:
        """The fewest bytes any accepted convention counts, as far as fitting in `room` needs."""
        return min(self.raw, self.compressed_for(room))


def sizes_of(ctx: AuditContext, path: str, *, estimate: bool = False,
             codecs: tuple[str, ...] = CODECS) -> CodeSizes | None:
    """code_sizes of one file of the folder, computed once; the slow estimate only on request,
    over `codecs` (an estimate over more codecs reuses the minified text of one over fewer)."""
    tf = ctx.submission.code.get(path)
    if tf is None or tf.text is None:
        return None
    text = tf.text
    if not estimate:
        return ctx.memo(f"codesize-raw:{path}",
                        lambda: code_sizes(text, estimate=False, wrapper=wrapper_info(ctx, path)))
    if codecs == QUICK_CODECS:
        return ctx.memo(f"codesize-quick:{path}", lambda: code_sizes(
            text, wrapper=wrapper_info(ctx, path), parses=_parses_as_is(ctx, path), codecs=QUICK_CODECS))
    quick = sizes_of(ctx, path, estimate=True, codecs=QUICK_CODECS)
    return ctx.memo(f"codesize:{path}:{','.join(codecs)}",
                    lambda: with_codecs(quick, codecs) if quick is not None else None)


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

    def estimate(codecs: tuple[str, ...]) -> int:
        sizes = [s for s in (sizes_of(ctx, p, estimate=True, codecs=codecs) for p in counted) if s is not None]
        return sum(s.compressed_estimate if s.compressed_estimate is not None else s.raw for s in sizes)

    return CountedCode(tuple(files), sum(s.raw for s in measured), all(s.wrapper for s in measured), estimate)
