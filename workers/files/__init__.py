"""Reading and writing files: feeds in (CSV, XLSX), exports out (a folder, an SFTP server).

feedlines.py, feedreader.py ... streaming CSV with line numbers and byte offsets
xlsxreader.py ................. streaming XLSX a hostile workbook cannot blow up
cells.py ...................... cells a spreadsheet must not run as formulas
disk.py ....................... SHA-256 of a descriptor, durable renames
destinations.py ............... where an export's bytes go, atomically
sftp.py, sftp_destination.py .. one pinned SFTP session; exports pushed to a server
"""
