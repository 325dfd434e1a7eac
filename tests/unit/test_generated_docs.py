# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The committed option docs match the drivers' Opt declarations (scripts/gen_driver_docs.py)."""

from __future__ import annotations

import importlib.util
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _generator():
    path = os.path.join(REPO, "scripts", "gen_driver_docs.py")
    spec = importlib.util.spec_from_file_location("gen_driver_docs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_driver_docs_are_up_to_date():
    stale = []
    for path, text in _generator().outputs().items():
        full = os.path.join(REPO, path)
        if not os.path.exists(full) or open(full, encoding="utf-8").read() != text:
            stale.append(path)
    assert not stale, f"out of date, run: python scripts/gen_driver_docs.py ({', '.join(stale)})"


def test_every_driver_option_is_in_the_backend_fragment():
    generator = _generator()
    fragment = open(os.path.join(REPO, generator.FRAGMENT), encoding="utf-8").read()
    for cls in generator.drivers():
        assert f"Driver C({cls.name})" in fragment
        for opt in cls.options:
            assert f"C({opt.name})" in fragment, (cls.name, opt.name)


def test_ansible_doc_shows_one_short_paragraph_per_driver_with_only_its_options():
    """ansible-doc's `backend` is scanned for one driver's options: a paragraph each, naming that driver's
    options and its page, short enough to scan (each option's meaning is on the page)."""
    import yaml

    generator = _generator()
    spec = importlib.util.spec_from_file_location("backend_fragment", os.path.join(REPO, generator.FRAGMENT))
    fragment = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fragment)
    description = yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]["backend"]["description"]
    classes = generator.drivers()
    for cls in classes:
        paragraphs = [p for p in description if p.startswith(f"Driver C({cls.name})")]
        assert len(paragraphs) == 1, cls.name
        paragraph = paragraphs[0]
        assert f"docs/drivers/{cls.name}.md" in paragraph
        # 900: the file driver lists three export targets' options (tgt, and lio/nvmet with Cinder's names).
        assert len(paragraph) < 900, (cls.name, len(paragraph))
        own = {opt.name for opt in cls.options}  # drivers may share options (file's and lvm's iSCSI export)
        for other in classes:
            for opt in other.options:
                assert (f"C({opt.name})" in paragraph) == (opt.name in own), (cls.name, opt.name)
