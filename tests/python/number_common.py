"""The seed's "one-number" network object (c_network_objects), both roles, for Python
MagicNet 0.0.7, printing what happens as JSON lines."""

import dataclasses
from typing import ClassVar

from magicnet.core.errors import DataValidationError
from magicnet.netobjects.network_field import NetworkField
from magicnet.netobjects.network_object import NetworkObject
from magicnet.protocol import network_types
from magicnet.util.typechecking.magicnet_typechecker import check_type

from chat_common import out


@dataclasses.dataclass
class NumberClient(NetworkObject):
    """Role 0: the clients' view."""

    network_name = "one-number"
    object_role = 0
    all_objects: ClassVar[list] = []
    value: int = dataclasses.field(init=False, default=0)

    def net_create(self):
        self.all_objects.append(self)
        out(event="created", oid=self.oid, zone=self.zone, value=self.value)

    def net_delete(self):
        if self in self.all_objects:
            self.all_objects.remove(self)
        out(event="deleted", oid=self.oid)

    @NetworkField
    def set_current_value(self, value):
        self.value = value
        out(event="value", oid=self.oid, value=value)


@dataclasses.dataclass
class NumberServer(NetworkObject):
    """Role 1: the server's view."""

    network_name = "one-number"
    object_role = 1
    value: int = dataclasses.field(init=False, default=0)

    def net_create(self):
        out(event="created", oid=self.oid, zone=self.zone, value=self.value)

    def net_delete(self):
        out(event="deleted", oid=self.oid)

    @NetworkField
    def set_init_value(self, value: network_types.int32):
        self.value = value
        out(event="init", oid=self.oid, value=value)
        self.send_message("set_current_value", [self.value])

    @NetworkField
    def add_value(self, value: network_types.int32):
        try:
            check_type(value + self.value, network_types.int32)
        except DataValidationError:
            out(event="overflow", oid=self.oid, value=value)
            return
        self.value += value
        out(event="add", oid=self.oid, value=self.value)
        self.send_message("set_current_value", [self.value])
