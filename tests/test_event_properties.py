"""
Event attributes are properties with a setter, as on a processor: code that registers handlers
through the class's property (Extron's C{ModuleSupport.eventEx}, shipped in Global Scripter
projects) works on every extronlib class and every handler.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from functools import partial
from itertools import product
from typing import Any

import pytest
from twisted.internet.task import Clock

from twisted_ch._events import Event, eventNames

MODULES = (
    "twisted_ch.extronlib.device",
    "twisted_ch.extronlib.interface",
    "twisted_ch.extronlib.software",
    "twisted_ch.extronlib.system",
    "twisted_ch.extronlib.ui",
    "twisted_ch.extronlib._base",
    "twisted_ch.extronlib._io",
    "twisted_ch.extronlib._ports",
    "twisted_ch.extronlib._servers",
    "twisted_ch._handlers",
    "twisted_ch._modules",
    "twisted_ch._server",
)


# A stand-in written for these tests, following the behaviour of ModuleSupport's eventEx: the
# class attribute must be a property with a setter (else a method); several handlers per event.
_dispatch: dict[tuple[int, str], list[Callable[..., object]]] = {}


def _dispatchTo(key: tuple[int, str], *args: Any) -> None:
    for handler in _dispatch[key]:
        handler(*args)


def eventEx(objects: Any, names: Any) -> Callable[[Callable[..., object]], Callable[..., object]]:
    objects = objects if isinstance(objects, list) else [objects]
    names = names if isinstance(names, list) else [names]

    def decorate(handler: Callable[..., object]) -> Callable[..., object]:
        for obj, name in product(objects, names):
            declared = getattr(type(obj), name)
            if isinstance(declared, property) and declared.fset is not None:
                setter = partial(declared.fset, obj)
            elif callable(declared):
                setter = partial(declared, obj)
            else:
                raise TypeError(f"{name} of {obj.__name__} is not a settable property")
            key = (id(obj), name)
            _dispatch.setdefault(key, []).append(handler)
            setter(partial(_dispatchTo, key))
        return handler

    return decorate


def _eventClasses() -> Iterator[tuple[str, type]]:
    for module in MODULES:
        for name, cls in vars(importlib.import_module(module)).items():
            if inspect.isclass(cls) and cls.__module__ == module and eventNames(cls):
                yield f"{module}.{name}", cls


CLASSES = sorted(_eventClasses())


def test_classes_with_events_are_found() -> None:
    names = {n.rsplit(".", 1)[1] for n, _ in CLASSES}
    assert {"Button", "UIDevice", "EthernetClientInterface", "RawTcpHandler", "Timer"} <= names
    assert len(CLASSES) >= 15


@pytest.mark.parametrize(("name", "cls"), CLASSES, ids=[n for n, _ in CLASSES])
def test_every_event_is_a_settable_property(name: str, cls: type) -> None:
    for event in eventNames(cls):
        declared = getattr(cls, event)
        assert isinstance(declared, property), f"{name}.{event}"
        assert declared.fset is not None and declared.fget is not None, f"{name}.{event}"
        assert declared.fdel is not None
        assert declared.__doc__, f"{name}.{event} lost its docstring"


def test_eventex_registers_several_handlers_on_a_button() -> None:
    from twisted_ch.extronlib.device import UIDevice
    from twisted_ch.extronlib.ui import Button

    clock = Clock()
    tlp = UIDevice("PodiumTLP", reactor=clock)
    buttons = [Button(tlp, 1), Button(tlp, 2)]
    calls: list[tuple[str, int, str]] = []

    @eventEx(buttons, ["Pressed", "Released"])
    def first(button: Any, state: str) -> None:
        calls.append(("first", button.ID, state))

    @eventEx(buttons[0], "Pressed")
    def second(button: Any, state: str) -> None:
        calls.append(("second", button.ID, state))

    buttons[0].press()
    buttons[0].release()
    buttons[1].press()
    assert calls == [
        ("first", 1, "Pressed"),
        ("second", 1, "Pressed"),
        ("first", 1, "Released"),
        ("first", 2, "Pressed"),
    ]


def test_eventex_on_an_interface_and_a_handler() -> None:
    from twisted_ch import GetConnectionHandler
    from twisted_ch.extronlib.interface import EthernetClientInterface

    clock = Clock()
    iface = EthernetClientInterface("127.0.0.1", 1, reactor=clock)
    handler = GetConnectionHandler(iface, lambda: None, reactor=clock)
    got: list[Any] = []
    eventEx(iface, "ReceiveData")(lambda i, data: got.append(data))
    eventEx(handler, ["Connected", "Disconnected"])(lambda h, state: got.append(state))
    type(iface).ReceiveData.fget(iface)(iface, b"x")
    handler.Connected(handler, "Connected")
    assert got == [b"x", "Connected"]


def test_the_property_keeps_checking_handlers() -> None:
    from twisted_ch.extronlib.device import UIDevice
    from twisted_ch.extronlib.ui import Button

    button = Button(UIDevice("PodiumTLP", reactor=Clock()), 3)
    with pytest.raises(TypeError, match="Pressed event handler must be callable or None, not int"):
        button.Pressed = 3  # type: ignore[assignment]
    with pytest.raises(TypeError, match="must be callable"):
        type(button).Pressed.fset(button, "f")  # type: ignore[misc]
    handler = print
    type(button).Pressed.fset(button, handler)  # type: ignore[misc]
    assert button.Pressed is handler
    del button.Pressed
    assert button.Pressed is None
    button.Pressed = None
    assert isinstance(type(button).Pressed, Event)
