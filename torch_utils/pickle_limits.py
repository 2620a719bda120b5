"""What a pickle stream may cost: the errors the restricted unpickler raises, and the budget that
keeps a small file from asking for a large amount of memory.

Every object the stream builds costs at least one opcode, and every byte of tensor or array data
must come from the file itself: a network pickle holds its weights once. So the unpickler counts
opcodes, and each builder that allocates data (tensor storages, numpy arrays, decoded bytes)
charges its size to a budget of the file's size (plus a little slack for small files).
"""

from __future__ import annotations

MAX_OPERATIONS = 250_000     # official snapshots hold 20,000-25,000 at 32 px, about twice that at 1024 px
BUDGET_SLACK = 16 << 20      # bytes allowed beyond the file's size (small hyperparameter arrays)


class RefusedPickle(Exception):
    """The stream asks for something not allowed; the loader turns it into a ModelLoadError
    naming the file. The message completes the sentence "refused to load: ..."."""


class UnsupportedFile(Exception):
    """A file recognised as something this tool does not read (e.g. a StyleGAN-XL pickle saved
    with dill); the message is a whole sentence that names what it is and what is supported."""


class NotPickleData(Exception):
    """The stream is not pickle data at all (an unknown opcode)."""


class DataBudget:
    """Bytes of data the builders of one stream may still allocate."""

    def __init__(self, file_size: int) -> None:
        self.left = int(file_size) + BUDGET_SLACK

    def charge(self, nbytes: int, what: str) -> None:
        if nbytes > self.left:
            raise RefusedPickle(f"{what} asks for {nbytes:,} bytes, more data than the file holds "
                                "(a damaged or crafted file)")
        self.left -= nbytes
