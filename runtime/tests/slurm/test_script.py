"""The batch script: environment and command quoted for the shell (run by a real sh here;
the same script under a real Slurm is in test_client.py)."""

from __future__ import annotations

import json
import subprocess

import pytest

from runtime.slurm.script import batch_script

AWKWARD = {
    "COMMA": "a,b,c=d",
    "QUOTES": "it's \"quoted\" `echo no` $(echo no) $HOME '\\''",
    "NEWLINES": "\nline one\nline two\n",
    "EMPTY": "",
}


def test_the_script_exports_every_value_verbatim_and_execs_the_command_list():
    dump = [
        "python3",
        "-c",
        "import json, os, sys; print(json.dumps([dict(os.environ), sys.argv]))",
    ]
    script = batch_script([*dump, "arg with space", "$HOME", "'"], AWKWARD)

    out = subprocess.run(["sh"], input=script, capture_output=True, text=True, check=True, env={})
    env, argv = json.loads(out.stdout)

    assert {name: env[name] for name in AWKWARD} == AWKWARD
    assert env["PATH"].startswith("/usr/local/sbin:")
    assert argv[1:] == ["arg with space", "$HOME", "'"]


@pytest.mark.parametrize(
    ("command", "env", "message"),
    [
        ([], {}, "needs a command"),
        (["true"], {"1X": "v"}, "not a shell name"),
        (["true"], {"X\n": "v"}, "not a shell name"),
        (["true"], {"X": "a\x00b"}, "NUL"),
        (["tr\x00ue"], {}, "NUL"),
    ],
)
def test_what_a_shell_cannot_carry_is_refused(command, env, message):
    with pytest.raises(ValueError, match=message):
        batch_script(command, env)
