"""The append-only journal: opaque payload bytes under caller-assigned, gap-free seqs.

The journal knows nothing about events or codecs. Two stores implement `JournalStore`:
`open_file_store` (segment files with crash recovery) and `MemoryJournalStore`. `open_reader`
gives read-only access to a directory from another process, and `follow` tails it.
"""

from .errors import JournalClosed as JournalClosed
from .errors import JournalCorrupted as JournalCorrupted
from .errors import JournalError as JournalError
from .errors import JournalLocked as JournalLocked
from .errors import JournalNotFound as JournalNotFound
from .follow import JournalFollower as JournalFollower
from .follow import follow as follow
from .frame import HEADER_SIZE as HEADER_SIZE
from .frame import FrameScan as FrameScan
from .frame import ScanStop as ScanStop
from .frame import ScanSummary as ScanSummary
from .frame import encode_frame as encode_frame
from .frame import encode_frames as encode_frames
from .frame import scan_frames as scan_frames
from .frame import skip_frames as skip_frames
from .frame import verify_frames as verify_frames
from .memory import MemoryJournalStore as MemoryJournalStore
from .segment import DEFAULT_MAX_SEGMENT_BYTES as DEFAULT_MAX_SEGMENT_BYTES
from .segment import FileJournalStore as FileJournalStore
from .segment import JournalReader as JournalReader
from .segment import JournalStats as JournalStats
from .segment import SegmentStats as SegmentStats
from .segment import open_file_store as open_file_store
from .segment import open_reader as open_reader
from .snapshot import FileSnapshotStore as FileSnapshotStore
from .snapshot import MemorySnapshotStore as MemorySnapshotStore
from .snapshot import SnapshotStore as SnapshotStore
from .store import FsyncPolicy as FsyncPolicy
from .store import JournalStore as JournalStore
from .store import Recovery as Recovery
from .store import TornTail as TornTail
