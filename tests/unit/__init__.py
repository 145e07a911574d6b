"""Fast tests of one module each: no subprocess, no window, no model export beyond the tiny fixtures."""
