"""tern's vocabulary: typed events, their codec, and the journal that stores them."""

from events.base import Envelope as Envelope
from events.base import Event as Event
from events.codec import Codec as Codec
from events.codec import DecodeError as DecodeError
from events.codec import default_codec as default_codec
from events.registry import BY_TAG as BY_TAG
from events.registry import EVENT_CLASSES as EVENT_CLASSES
