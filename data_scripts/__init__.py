"Scripts that fetch and prepare every data set into the layout `ssod.data` reads. Run `python -m data_scripts.prepare --help`."
