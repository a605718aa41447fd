"""The TOML configuration of a tern session, checked into attrs records.

Every problem is a :class:`ConfigError` naming the key, the value and what was expected;
unknown keys are errors too (a misspelt option must never be silently ignored).

Shape::

    [session]
    seed = 1                      # seeds every actor's rng

    [journal]
    dir = "journal"
    fsync = "per_batch"           # per_batch | interval | none
    fsync_interval_ms = 50
    max_segment_mb = 64

    [supervisor]
    grace_s = 5.0
    max_restarts = 5
    window_s = 60.0
    backoff_initial_ms = 100
    backoff_max_ms = 10000

    [synthetic]                   # optional: the demo's seeded random-walk market
    symbols = ["BTCUSDT"]
    start_price = "50000.00"
    tick_size = "0.01"
    interval_ms = 100

    [[strategies]]
    class = "actors.strategies.example:MeanReversion"
    name = "mean-reversion"       # optional
    restart = "permanent"         # permanent | transient | temporary
    [strategies.params]
    symbol = "BTCUSDT"
"""

from __future__ import annotations

import enum
import importlib
import math
import re
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from actors.base import FoldActor
from actors.supervisor import RestartPolicy
from events.journal import FsyncPolicy

#: Names the runtime itself publishes under; actors may not take them.
RESERVED_NAMES = frozenset(
    {
        "runtime",
        "supervisor",
        "journal",
        "timers",
        "synthetic-market",
        "connectivity",
        "instruments",
        "market-data",
        "book-sync",
    }
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
#: Parameter names that hold secrets; such params are refused rather than journaled.
_SECRET_NAMES = frozenset(
    {"secret", "api_key", "api_secret", "secret_key", "private_key", "password", "passphrase"}
)
_SECRET_SUFFIXES = ("_secret", "_password", "_passphrase", "_private_key", "_api_key")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong kind."""

    def __init__(self, key: str, value: Any, expected: str) -> None:
        shown = "(missing)" if value is _MISSING else repr(value)
        super().__init__(f"config key {key!r}: got {shown}; expected {expected}")
        self.key = key
        self.value = value
        self.expected = expected


_MISSING = object()


@attrs.frozen
class JournalConfig:
    dir: str = "journal"
    fsync: FsyncPolicy = FsyncPolicy.PER_BATCH
    fsync_interval_ms: int = 50
    max_segment_mb: int = 64


@attrs.frozen
class SupervisorConfig:
    grace_s: float = 5.0
    max_restarts: int = 5
    window_s: float = 60.0
    backoff_initial_ms: int = 100
    backoff_max_ms: int = 10_000


@attrs.frozen
class SyntheticConfig:
    symbols: tuple[str, ...] = ("BTCUSDT",)
    start_price: str = "50000.00"
    tick_size: str = "0.01"
    interval_ms: int = 100


@attrs.frozen
class StrategyConfig:
    class_path: str
    name: str
    restart: RestartPolicy
    params: dict[str, Any]


@attrs.frozen
class Config:
    seed: int = 1
    journal: JournalConfig = JournalConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    synthetic: SyntheticConfig | None = None
    strategies: tuple[StrategyConfig, ...] = ()
    clients: tuple[ClientConfig, ...] = ()


class AccountType(enum.Enum):
    SPOT = "spot"
    USDT_FUTURES = "usdt_futures"
    COIN_FUTURES = "coin_futures"


class Environment(enum.Enum):
    LIVE = "LIVE"
    DEMO = "DEMO"
    TESTNET = "TESTNET"


class KeyType(enum.Enum):
    HMAC = "hmac"
    ED25519 = "ed25519"
    RSA = "rsa"


#: Client options that hold secrets: checked, kept in memory, never written to the journal.
CLIENT_SECRETS = ("api_key", "api_secret", "private_key_file")


@attrs.frozen
class ClientConfig:
    """One Binance account the session connects to (DESIGN section 5 names).

    The connectivity actors that use these options arrive with later capabilities; the
    loader already checks every option so a config written today keeps working.
    """

    name: str
    account_type: AccountType
    environment: Environment = Environment.LIVE
    us: bool = False
    base_url_http: str | None = None
    base_url_ws: str | None = None
    base_url_ws_api: str | None = None
    base_url_ws_stream: str | None = None
    proxy_url: str | None = None
    api_key: str | None = attrs.field(default=None, repr=False)
    api_secret: str | None = attrs.field(default=None, repr=False)
    private_key_file: str | None = attrs.field(default=None, repr=False)
    key_type: KeyType = KeyType.HMAC
    broker_id: str | None = None
    use_agg_trade_ticks: bool = False
    #: Reload every instrument definition this often (0 = never after the first load).
    update_instruments_interval_mins: int = 60
    #: Poll ``exchangeInfo`` for status changes this often (0 = off).
    instrument_status_poll_secs: int = 3600
    #: Log one warning per instrument that cannot be parsed (the events are kept either way).
    log_warnings: bool = True
    use_gtd: bool = True
    use_reduce_only: bool = True
    use_position_ids: bool = True
    use_trade_lite: bool = False
    treat_expired_as_canceled: bool = False
    recv_window_ms: int = 5000
    max_retries: int = 3
    retry_delay_initial_ms: int = 1000
    retry_delay_max_ms: int = 10_000
    futures_leverages: dict[str, int] = attrs.field(factory=dict)
    futures_margin_types: dict[str, str] = attrs.field(factory=dict)
    log_rejected_due_post_only_as_warning: bool = True
    default_taker_fee: str | None = None
    query_commission_rates: bool = False
    #: Journal every market-stream frame as received (``stream.frame``), so replay can
    #: re-parse it; false keeps frames out of the journal, and then no actor receives them.
    journal_raw_frames: bool = True
    #: Seconds without a frame after which a market-stream connection is recycled and the
    #: silence reported as a gap. Connections holding only streams Binance pushes on rare
    #: events (liquidations, contract changes, block trades) are exempt. 0 turns the deadline
    #: off: the ping probe alone then watches each connection.
    stream_liveness_secs: int = 60


class _Table:
    """Typed access to one TOML table that remembers which keys were read."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(path, data, "a table")
        self.data = data
        self.path = path
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, kind: type | tuple[type, ...], default: Any, expected: str) -> Any:
        self.used.add(name)
        value = self.data.get(name, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise ConfigError(self.key(name), value, expected)
            return default
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise ConfigError(self.key(name), value, expected)
        if not isinstance(value, kind):
            raise ConfigError(self.key(name), value, expected)
        return value

    def positive_int(self, name: str, default: Any) -> int:
        value = self.get(name, int, default, "a positive integer")
        if value <= 0:
            raise ConfigError(self.key(name), value, "a positive integer")
        return value

    def non_negative_int(self, name: str, default: Any, expected: str) -> int:
        value = self.get(name, int, default, expected)
        if value < 0:
            raise ConfigError(self.key(name), value, expected)
        return value

    def positive_number(self, name: str, default: Any) -> float:
        value = self.get(name, (int, float), default, "a positive finite number")
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(self.key(name), value, "a positive finite number")
        return float(value)

    def choice(self, name: str, enum_type: type, default: Any) -> Any:
        allowed = [member.value for member in enum_type]
        expected = "one of " + ", ".join(allowed)
        value = self.get(name, str, _MISSING if default is _MISSING else default.value, expected)
        if value not in allowed:
            raise ConfigError(self.key(name), value, expected)
        return enum_type(value)

    def decimal_string(self, name: str, default: Any) -> Any:
        expected = 'a positive decimal written as a string, e.g. "0.01"'
        value = self.get(name, str, default, expected)
        if value is None:  # an optional key left out
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ConfigError(self.key(name), value, expected) from None
        if not number.is_finite() or number <= 0:
            raise ConfigError(self.key(name), value, expected)
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used)) or "none"
            raise ConfigError(self.key(unknown[0]), self.data[unknown[0]], f"a known key ({known})")


def load_config(path: str | Path) -> Config:
    """Read and check a TOML config file.

    Raises:
        ConfigError: the file is missing, is not TOML, or holds a bad value.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("(file)", str(path), f"a readable TOML file ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(file)", str(path), f"valid TOML ({exc})") from None
    return config_from_dict(data)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Check a config given as the dict a TOML file parses into."""
    root = _Table(data, "")
    session = _Table(root.get("session", dict, {}, "a table"), "session")
    seed = session.get("seed", int, 1, "an integer")
    session.finish()

    journal_table = _Table(root.get("journal", dict, {}, "a table"), "journal")
    journal_dir = journal_table.get("dir", str, "journal", "a non-empty directory path")
    if not journal_dir.strip():
        raise ConfigError("journal.dir", journal_dir, "a non-empty directory path")
    journal = JournalConfig(
        dir=journal_dir,
        fsync=journal_table.choice("fsync", FsyncPolicy, FsyncPolicy.PER_BATCH),
        fsync_interval_ms=journal_table.positive_int("fsync_interval_ms", 50),
        max_segment_mb=journal_table.positive_int("max_segment_mb", 64),
    )
    journal_table.finish()

    supervisor_table = _Table(root.get("supervisor", dict, {}, "a table"), "supervisor")
    supervisor = SupervisorConfig(
        grace_s=supervisor_table.positive_number("grace_s", 5.0),
        max_restarts=supervisor_table.get("max_restarts", int, 5, "a non-negative integer"),
        window_s=supervisor_table.positive_number("window_s", 60.0),
        backoff_initial_ms=supervisor_table.positive_int("backoff_initial_ms", 100),
        backoff_max_ms=supervisor_table.positive_int("backoff_max_ms", 10_000),
    )
    if supervisor.max_restarts < 0:
        raise ConfigError(
            "supervisor.max_restarts", supervisor.max_restarts, "a non-negative integer"
        )
    if supervisor.backoff_max_ms < supervisor.backoff_initial_ms:
        raise ConfigError(
            "supervisor.backoff_max_ms",
            supervisor.backoff_max_ms,
            f"at least backoff_initial_ms ({supervisor.backoff_initial_ms})",
        )
    supervisor_table.finish()

    synthetic = None
    root.used.add("synthetic")
    if "synthetic" in data:
        table = _Table(root.get("synthetic", dict, _MISSING, "a table"), "synthetic")
        symbols = table.get("symbols", list, ["BTCUSDT"], "a non-empty list of symbol names")
        if not symbols or not all(isinstance(s, str) and s.isalnum() for s in symbols):
            raise ConfigError("synthetic.symbols", symbols, "a non-empty list of symbol names")
        synthetic = SyntheticConfig(
            symbols=tuple(symbols),
            start_price=table.decimal_string("start_price", "50000.00"),
            tick_size=table.decimal_string("tick_size", "0.01"),
            interval_ms=table.positive_int("interval_ms", 100),
        )
        table.finish()

    strategies = []
    raw_strategies = root.get("strategies", list, [], "an array of tables ([[strategies]])")
    names: set[str] = set()
    for index, raw in enumerate(raw_strategies):
        table = _Table(raw, f"strategies[{index}]")
        class_path = table.get("class", str, _MISSING, '"module:Class" of a Strategy subclass')
        load_strategy_class(class_path, key=table.key("class"))
        default_name = class_path.rpartition(":")[2].lower()
        name = table.get("name", str, default_name, "a lowercase actor name")
        if not _NAME.match(name):
            raise ConfigError(
                table.key("name"), name, "a lowercase name of letters, digits, '-', '_' or '.'"
            )
        if name in RESERVED_NAMES or name in names:
            raise ConfigError(table.key("name"), name, "a name no other actor uses")
        names.add(name)
        strategies.append(
            StrategyConfig(
                class_path=class_path,
                name=name,
                restart=table.choice("restart", RestartPolicy, RestartPolicy.PERMANENT),
                params=_strategy_params(table),
            )
        )
        table.finish()
    clients = []
    raw_clients = root.get("clients", list, [], "an array of tables ([[clients]])")
    for index, raw in enumerate(raw_clients):
        client = _client(_Table(raw, f"clients[{index}]"))
        if client.name in names or any(c.name == client.name for c in clients):
            raise ConfigError(f"clients[{index}].name", client.name, "a name no other client uses")
        clients.append(client)
    root.finish()
    return Config(
        seed=seed,
        journal=journal,
        supervisor=supervisor,
        synthetic=synthetic,
        strategies=tuple(strategies),
        clients=tuple(clients),
    )


def _optional(table: _Table, name: str, kind: type, expected: str) -> Any:
    return table.get(name, kind, None, expected)


def _client(table: _Table) -> ClientConfig:
    account_type = table.choice("account_type", AccountType, _MISSING)
    name = table.get("name", str, account_type.value, "a client name")
    if not _NAME.match(name):
        # Client names become parts of connection names (``spot/market~2#1``) and ids.
        raise ConfigError(
            table.key("name"), name, "a lowercase name of letters, digits, '-', '_' or '.'"
        )
    url = "a URL such as http://127.0.0.1:8080"
    flags = {
        flag: table.get(flag, bool, default, "true or false")
        for flag, default in (
            ("us", False),
            ("use_agg_trade_ticks", False),
            ("use_gtd", True),
            ("use_reduce_only", True),
            ("use_position_ids", True),
            ("use_trade_lite", False),
            ("treat_expired_as_canceled", False),
            ("log_rejected_due_post_only_as_warning", True),
            ("query_commission_rates", False),
            ("journal_raw_frames", True),
            ("log_warnings", True),
        )
    }
    leverages = table.get("futures_leverages", dict, {}, "a table of symbol = leverage")
    for symbol, leverage in leverages.items():
        if type(leverage) is not int or not 1 <= leverage <= 125:
            raise ConfigError(f"{table.key('futures_leverages')}.{symbol}", leverage, "1..125")
    margin_types = table.get("futures_margin_types", dict, {}, "a table of symbol = type")
    for symbol, margin_type in margin_types.items():
        if margin_type not in ("CROSSED", "ISOLATED"):
            raise ConfigError(
                f"{table.key('futures_margin_types')}.{symbol}", margin_type, "CROSSED or ISOLATED"
            )
    fee = table.decimal_string("default_taker_fee", None)
    client = ClientConfig(
        name=name,
        account_type=account_type,
        environment=table.choice("environment", Environment, Environment.LIVE),
        base_url_http=_optional(table, "base_url_http", str, url),
        base_url_ws=_optional(table, "base_url_ws", str, url),
        base_url_ws_api=_optional(table, "base_url_ws_api", str, url),
        base_url_ws_stream=_optional(table, "base_url_ws_stream", str, url),
        proxy_url=_optional(table, "proxy_url", str, url),
        api_key=_optional(table, "api_key", str, "the API key"),
        api_secret=_optional(table, "api_secret", str, "the API secret"),
        private_key_file=_optional(table, "private_key_file", str, "a PEM file path"),
        key_type=table.choice("key_type", KeyType, KeyType.HMAC),
        broker_id=_optional(table, "broker_id", str, "your Binance broker id"),
        update_instruments_interval_mins=table.non_negative_int(
            "update_instruments_interval_mins", 60, "a non-negative integer of minutes (0 = off)"
        ),
        instrument_status_poll_secs=table.non_negative_int(
            "instrument_status_poll_secs", 3600, "a non-negative integer of seconds (0 = off)"
        ),
        recv_window_ms=table.positive_int("recv_window_ms", 5000),
        max_retries=table.non_negative_int("max_retries", 3, "a non-negative integer"),
        retry_delay_initial_ms=table.positive_int("retry_delay_initial_ms", 1000),
        retry_delay_max_ms=table.positive_int("retry_delay_max_ms", 10_000),
        futures_leverages=dict(leverages),
        futures_margin_types=dict(margin_types),
        default_taker_fee=fee,
        stream_liveness_secs=table.non_negative_int(
            "stream_liveness_secs",
            60,
            "a non-negative integer of seconds (0 turns the stream silence deadline off)",
        ),
        **flags,
    )
    if client.us and client.account_type is not AccountType.SPOT:
        raise ConfigError(table.key("us"), True, "false: Binance US has Spot only")
    table.finish()
    return client


def _strategy_params(table: _Table) -> dict[str, Any]:
    params = table.get("params", dict, {}, "a table of strategy parameters")
    for path in _key_paths(params, table.key("params")):
        leaf = path.rpartition(".")[2].lower()
        if leaf in _SECRET_NAMES or leaf.endswith(_SECRET_SUFFIXES):
            raise ConfigError(
                path,
                "<hidden>",
                "no secret in strategy params: params are recorded in the journal",
            )
    return params


def _key_paths(value: Any, path: str) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.append(f"{path}.{key}")
            found.extend(_key_paths(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_key_paths(item, f"{path}[{index}]"))
    return found


def load_strategy_class(class_path: str, *, key: str = "class") -> type[FoldActor]:
    """Import ``module:Class`` and check it is a deterministic actor class."""
    expected = '"module:Class" naming an importable Strategy subclass'
    module_name, colon, class_name = class_path.partition(":")
    if not colon or not module_name or not class_name:
        raise ConfigError(key, class_path, expected)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(key, class_path, f"{expected} ({exc})") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, FoldActor)):
        raise ConfigError(key, class_path, expected)
    return cls


def config_to_dict(config: Config) -> dict[str, Any]:
    """The config in its TOML shape with defaults filled in; what ``session.started``
    records and what replay rebuilds the actors from. It holds no secret: the loader
    refuses secret-looking strategy params."""
    data: dict[str, Any] = {
        "session": {"seed": config.seed},
        "journal": {
            "dir": config.journal.dir,
            "fsync": config.journal.fsync.value,
            "fsync_interval_ms": config.journal.fsync_interval_ms,
            "max_segment_mb": config.journal.max_segment_mb,
        },
        "supervisor": attrs.asdict(config.supervisor),
        "strategies": [
            {
                "class": strategy.class_path,
                "name": strategy.name,
                "restart": strategy.restart.value,
                "params": strategy.params,
            }
            for strategy in config.strategies
        ],
    }
    if config.clients:
        data["clients"] = [_client_dict(client) for client in config.clients]
    if config.synthetic is not None:
        synthetic = attrs.asdict(config.synthetic)
        synthetic["symbols"] = list(config.synthetic.symbols)
        data["synthetic"] = synthetic
    return data


def _client_dict(client: ClientConfig) -> dict[str, Any]:
    """A client's options without its secrets (they never enter the journal)."""
    data: dict[str, Any] = {}
    for field in attrs.fields(ClientConfig):
        value = getattr(client, field.name)
        if field.name in CLIENT_SECRETS or value is None:
            continue
        data[field.name] = value.value if isinstance(value, enum.Enum) else value
    return data
