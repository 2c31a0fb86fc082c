"""`TestPipeline`: the Pipeline every Beam test uses, configured from `--test-pipeline-options`."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any
from unittest import SkipTest

from millstream.engine.model.options import PipelineOptions
from millstream.engine.model.pipeline import Pipeline

#: The states a blocking TestPipeline accepts as a successful run (Beam's `PipelineState` names).
_SUCCESS_STATES = frozenset({"DONE", "CANCELLED"})


def _test_option_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--test-pipeline-options", type=str, action="store")
    parser.add_argument("--not-use-test-runner-api", action="store_true", default=False)
    return parser


class TestPipeline(Pipeline):
    """A Pipeline for tests: options come from `--test-pipeline-options="..."` on the command line (or `argv`),
    `run()` waits for the end of the run when `blocking`, and the `with` block runs it on exit."""

    __test__ = False  # not a pytest test class

    #: Set by a pytest plugin to supply options without a command-line flag (as Beam's conftest does).
    pytest_test_pipeline_options: str | None = None

    def __init__(
        self,
        runner: Any = None,
        options: PipelineOptions | None = None,
        argv: list[str] | None = None,
        is_integration_test: bool = False,
        blocking: bool = True,
        additional_pipeline_args: list[str] | None = None,
        display_data: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        self.is_integration_test = is_integration_test
        self.not_use_test_runner_api = False
        self.options_list = self._parse_test_option_args(argv) + list(additional_pipeline_args or [])
        self.blocking = blocking
        self.timeout = timeout
        if options is None:
            options = PipelineOptions(self.options_list)
        super().__init__(runner, options, display_data=display_data)

    def run(self, test_runner_api: Any = True) -> Any:
        """Run the pipeline; when blocking, wait for its end and fail unless it finished."""
        result = super().run(test_runner_api=test_runner_api)
        if self.blocking:
            state = result.wait_until_finish(duration=self.timeout)
            assert str(state) in _SUCCESS_STATES, f"Pipeline execution failed: state {state}"
        return result

    def get_pipeline_options(self) -> PipelineOptions:
        """The options this pipeline runs with."""
        return self._options

    def _parse_test_option_args(self, argv: list[str] | None) -> list[str]:
        known, _ = _test_option_parser().parse_known_args(sys.argv if argv is None else argv)
        options = known.test_pipeline_options or TestPipeline.pytest_test_pipeline_options
        if self.is_integration_test and not options:
            raise SkipTest("IT is skipped because --test-pipeline-options is not specified")
        self.not_use_test_runner_api = known.not_use_test_runner_api
        return shlex.split(options) if options else []

    @classmethod
    def get_options_list(cls, argv: list[str] | None = None) -> list[str]:
        """The options given by `--test-pipeline-options` in `argv` (default: `sys.argv`), split like a shell."""
        known, _ = _test_option_parser().parse_known_args(sys.argv if argv is None else argv)
        options = known.test_pipeline_options or cls.pytest_test_pipeline_options
        return shlex.split(options) if options else []

    def get_full_options_as_args(self, **extra_opts: Any) -> list[str]:
        """The test options as arguments, followed by `--k=v` for each extra option (`--k` for True; falsy
        values are left out)."""
        options = list(self.options_list)
        for name, value in extra_opts.items():
            if not value:
                continue
            options.append(f"--{name}" if value is True else f"--{name}={value}")
        return options

    def get_option(self, opt_name: str, bool_option: bool = False) -> Any:
        """The value of option `opt_name` among the test options, or None when it is not given."""
        name = opt_name[2:] if opt_name.startswith("--") else opt_name
        parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
        if bool_option:
            parser.add_argument(f"--{name}", action="store_true")
        else:
            parser.add_argument(f"--{name}", type=str, action="store")
        known, _ = parser.parse_known_args(self.options_list)
        return getattr(known, name.replace("-", "_"), None)
