"""pixfind on the desktop: its icon files, and the menu entry, shortcuts and file-manager actions
that `pixfind desktop install` writes (and `pixfind desktop uninstall` takes away again).

No Qt here: the command line installs the entry without starting the window's toolkit.
"""
