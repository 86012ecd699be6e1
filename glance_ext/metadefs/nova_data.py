# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""The parts of nova the flavor generator and coverage check read.

Nova is a tooling/test requirement, never a runtime one (importing it pulls
in eventlet, the scheduler, oslo.messaging...), so it is imported here,
on demand, and nowhere else on the flavor side.  Everything below is
nova's own code and data: its extra-spec validators, its image object, its
scheduler filters and weighers with their options, and the API schema it
applies to aggregate metadata.  Where nova's functions expect a host, they
get nova's own ``HostState`` and ``Aggregate`` objects, not stand-ins.
"""

import warnings
from typing import Any, Dict, List, Mapping, Optional
from glance_ext.exceptions import NovaUnavailable


INSTALL_HINT = ("pip install 'nova==34.0.0' os-traits (see "
                "test-requirements.txt)")


class FlavorNova:
    """Nova's extra-spec registry and the scheduler code reading aggregates."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                from nova.api.openstack.compute.schemas import aggregates
                from nova.api.validation.extra_specs import validators
                from nova.api.validation import parameter_types
                from nova.api.validation import validators as api_validators
                from nova.conf import opts as conf_opts
                from nova import exception as nova_exception
                from nova import objects
                from nova.objects import image_meta
                from nova.scheduler.filters import extra_specs_ops
                from nova.scheduler import filters as scheduler_filters
                from nova.scheduler import host_manager
                from nova.scheduler import request_filter
                from nova.scheduler import weights as scheduler_weights
                from nova import version as nova_version
            except ImportError as e:
                raise NovaUnavailable(
                    "cannot import nova (%s): the flavor catalog is "
                    "generated from and checked against nova's own "
                    "extra-spec validators and scheduler, so nova must be "
                    "installed in this environment: %s" % (e, INSTALL_HINT))
        objects.register_all()
        # nova.api.validation.extra_specs.validators fills its registry
        # from the entry points when imported; loading again would only
        # repeat that.
        self.validators = validators
        self.validation_error = nova_exception.ValidationError
        self.image_fields = image_meta.ImageMetaProps.fields
        self.version = nova_version.version_string()
        self.objects = objects
        self._conf_opts = conf_opts
        self._host_manager = host_manager
        self._filters = scheduler_filters
        self._weights = scheduler_weights
        self._api_validators = api_validators
        self.aggregate_schemas = aggregates
        self.parameter_types = parameter_types
        self.operators = ["<or>"] + list(extra_specs_ops.op_methods)
        self.isolate_aggregates = request_filter.isolate_aggregates

    # -- extra specs -----------------------------------------------------
    def all_validators(self) -> List[Any]:
        return [self.validators.VALIDATORS[n]
                for n in sorted(self.validators.VALIDATORS)]

    def validate(self, key: str, value: str,
                 validator: Any = None) -> Optional[str]:
        """None if nova's API accepts extra spec ``key=value``, else why.

        Without ``validator`` the key goes through nova's registry lookup
        (``validators.validate``, what the flavor API calls), which finds
        the validator by name; with it, straight to that validator, which
        is the same check without the lookup (a linear regex search over
        525 patterns, too slow to repeat for every sample value).
        """
        try:
            if validator is None:
                self.validators.validate(key, value)
            else:
                validator.validate(key, value)
        except self.validation_error as e:
            return str(e)
        return None

    def image_enum(self, field: str) -> Optional[List[str]]:
        values = getattr(self.image_fields[field]._type, "_valid_values",
                         None)
        return [str(v) for v in values] if values else None

    def image_field_kind(self, field: str) -> str:
        return type(self.image_fields[field]).__name__

    # -- aggregates ------------------------------------------------------
    def host_with_metadata(self, *metadata: Mapping[str, str]) -> Any:
        """A scheduler HostState in one aggregate per metadata dict."""
        host = self._host_manager.HostState("host1", "node1", "cell1")
        host.aggregates = [self.objects.Aggregate(metadata=dict(m))
                           for m in metadata]
        return host

    def weighers(self) -> List[Any]:
        return [cls() for cls in self._weights.all_weighers()]

    def filter_classes(self) -> Dict[str, Any]:
        return {cls.__name__: cls for cls in self._filters.all_filters()}

    def options(self, group: str) -> Dict[str, Any]:
        """nova's oslo.config options of ``group``, by name.

        From nova.conf.opts.list_opts(), the list oslo-config-generator
        writes nova.conf.sample from.
        """
        found: Dict[str, Any] = {}
        for opt_group, opts in self._conf_opts.list_opts():
            name = getattr(opt_group, "name", opt_group)
            if name == group:
                found.update((opt.name, opt) for opt in opts)
        return found

    def option(self, group: str, name: str) -> Any:
        """The oslo.config Opt object nova registers as [group] name."""
        return self.options(group)[name]

    def request_spec(self, **fields: Any) -> Any:
        return self.objects.RequestSpec(**fields)

    def aggregate_metadata_error(self, key: str, value: str) -> Optional[str]:
        """None if nova's set_metadata API schema accepts ``key: value``."""
        body = {"set_metadata": {"metadata": {key: value}}}
        validator = self._api_validators._SchemaValidator(
            self.aggregate_schemas.set_metadata)
        try:
            validator.validate(body)
        except Exception as e:  # nova raises ValidationError subclasses
            return "%s: %s" % (type(e).__name__, e)
        return None

    def az_name_error(self, value: str) -> Optional[str]:
        """None if nova accepts ``value`` as an availability zone name."""
        validator = self._api_validators._SchemaValidator(
            {"type": "object",
             "properties": {"availability_zone":
                            self.parameter_types.az_name}})
        try:
            validator.validate({"availability_zone": value})
        except Exception as e:
            return "%s: %s" % (type(e).__name__, e)
        return None
