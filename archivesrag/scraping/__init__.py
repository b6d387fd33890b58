"""Scraping stage: a site config (config), page extraction (extract), crawl state (state) and the crawler."""

from archivesrag.scraping.config import ScrapeConfig, load_config, validate
from archivesrag.scraping.crawler import CrawlStats, canonical_url, crawl

__all__ = ["CrawlStats", "ScrapeConfig", "canonical_url", "crawl", "load_config", "validate"]
