"""What people read after a run: the HTML report (``hpctune report``), the PNG of learning
curves (``hpctune plot``), and the one read of an experiment they and the HDF5 export share
(``data``). Plotting libraries are imported only when a report or a plot is made."""
