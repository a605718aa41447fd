"""tern's running system: the bus, the supervisor, actors, strategies and the runtime."""

from actors.base import Actor as Actor
from actors.base import ActorContext as ActorContext
from actors.base import FoldActor as FoldActor
from actors.bus import Bus as Bus
from actors.bus import Subscription as Subscription
from actors.runtime import run_session as run_session
from actors.strategy import Strategy as Strategy
from actors.supervisor import ChildSpec as ChildSpec
from actors.supervisor import RestartPolicy as RestartPolicy
from actors.supervisor import Supervisor as Supervisor
