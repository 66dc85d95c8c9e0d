// bittorrent-protocol ships no types; the tests use it as a stock BitTorrent peer through their own interface.
declare module 'bittorrent-protocol'
