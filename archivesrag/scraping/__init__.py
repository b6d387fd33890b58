"""Scraping stage: a site config (config), crawl state (state) and the crawler (pages parsed by the shared
:mod:`archivesrag.htmltext`)."""

from archivesrag.scraping.config import ScrapeConfig, load_config, validate
from archivesrag.scraping.crawler import CrawlStats, canonical_url, crawl

__all__ = ["CrawlStats", "ScrapeConfig", "canonical_url", "crawl", "load_config", "validate"]
