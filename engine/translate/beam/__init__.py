"""The Beam translator: a millstream pipeline becomes an ``apache_beam`` one, run by Beam's runners."""
