"""What reads the run document: the terminal report, the comparison of runs, HTML, the trace.

``hooks.py`` is the pytest glue (assemble, save, print); ``cells`` is the one
vocabulary of table cells; ``text`` and ``suite_text`` the terminal report;
``compare`` the matrix of runs; ``html`` the page; ``trace`` the Chrome trace.
"""

from __future__ import annotations
